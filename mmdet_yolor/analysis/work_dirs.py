# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Read the work dirs that mmengine writes while training.

A work dir holds the checkpoints, a dump of the training config
(``<config name>.py``) and one ``<YYYYmmdd_HHMMSS>/`` folder per run (a
resumed training adds one). Each run's ``vis_data/scalars.json``, written by
mmengine's ``LocalVisBackend``, has one JSON object per line: training lines
carry ``loss`` and ``step`` (the iteration), validation lines carry the
metrics (``coco/bbox_mAP``, ...) and ``step`` (the epoch, or the iteration
of iteration-based loops). ``vis_data/config.py`` is the run's full config.
"""
import glob
import json
import os.path as osp
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config

from ..toggle import YOLOR_TYPES
from .prediction_files import COCO_METRIC_TYPES

# Display names of detectors, as in the YOLOR authors' MMDetection table.
DETECTOR_NAMES = {
    'FasterRCNN': 'Faster R-CNN',
    'MaskRCNN': 'Mask R-CNN',
    'SparseRCNN': 'Sparse R-CNN',
    'FCOS': 'FCOS',
    'ATSS': 'ATSS',
    'RetinaNet': 'RetinaNet',
}
# Shipped YOLOR configs insert this into their baseline's file name
# (faster-rcnn-yolor_r50_fpn_1x_coco.py <- faster-rcnn_r50_fpn_1x_coco.py).
YOLOR_CONFIG_MARKER = '-yolor'
# Run folders are named by the runner's start time, which sorts as text.
RUN_DIR_PATTERN = re.compile(r'^\d{8}_\d{6}$')


class WorkDirError(ValueError):
    """A work dir cannot be read or lacks what an analysis needs."""


@dataclass
class WorkDir:
    """What the analyses need from one training work dir.

    Attributes:
        path (str): The work dir.
        config_name (str): File stem of the config that trained it.
        model_type (str): ``model.type`` of the config, e.g.
            ``'FasterRCNN'``.
        yolor (bool): Whether the model contains a YOLOR neck or head.
        train_records (list[dict]): Training lines (those with ``loss``) of
            all runs in step order; a resumed run replaces the lines of
            earlier runs from its first step on.
        val_records (list[dict]): Validation lines with metrics, merged
            across runs the same way. Metric names keep their prefix
            (``coco/bbox_mAP``).
        seed (int, optional): ``randomness.seed`` of the config; None if
            it sets none (mmengine then draws one).
        val_ann_file (str, optional): The annotation file of the
            validation's ``CocoMetric``, as the config names it; None
            without one.
    """
    path: str
    config_name: str
    model_type: str
    yolor: bool
    train_records: List[Dict[str, Any]]
    val_records: List[Dict[str, Any]]
    seed: Optional[int] = None
    val_ann_file: Optional[str] = None

    @property
    def detector(self) -> str:
        """Display name of the detector, e.g. ``'Faster R-CNN'``."""
        return detector_name(self.model_type)

    @property
    def experiment(self) -> str:
        """The config name without the YOLOR marker: a baseline and its
        YOLOR version share it."""
        return experiment_name(self.config_name)

    @property
    def variant(self) -> str:
        """``'YOLOR'`` or ``'baseline'``."""
        return 'YOLOR' if self.yolor else 'baseline'

    def final_metrics(self) -> Dict[str, float]:
        """Metrics of the last validation of the latest run that has one,
        keyed without prefix (``bbox_mAP``, ``segm_mAP_50``, ...).

        Raises:
            WorkDirError: If no run of the work dir has validation metrics.
        """
        if not self.val_records:
            raise WorkDirError(
                f'{self.path} has no validation metrics: no line of its '
                f'<timestamp>/vis_data/scalars.json files has metrics such '
                f'as coco/bbox_mAP. Train until the first validation (see '
                f'train_cfg.val_interval) or pass the work dir of a run '
                f'that validated.')
        return metric_values(self.val_records[-1])


def detector_name(model_type: str) -> str:
    """Display name of a detector type; unknown types keep their name.
    A registry scope (``'mmdet.FCOS'``) is dropped."""
    model_type = model_type.rsplit('.', 1)[-1]
    return DETECTOR_NAMES.get(model_type, model_type)


def experiment_name(config_name: str) -> str:
    """The config name with the YOLOR marker removed. Runs trained with
    ``tools/train.py BASELINE.py --yolor`` keep the baseline's name anyway."""
    return config_name.replace(YOLOR_CONFIG_MARKER, '')


def contains_yolor(cfg: Any) -> bool:
    """Whether a (model) config contains a module of a YOLOR type at any
    depth."""
    if isinstance(cfg, dict):
        return cfg.get('type') in YOLOR_TYPES or any(
            contains_yolor(value) for value in cfg.values())
    if isinstance(cfg, (list, tuple)):
        return any(contains_yolor(value) for value in cfg)
    return False


def is_metric_record(record: Dict[str, Any]) -> bool:
    """Whether a scalars.json line holds evaluation metrics: mmengine names
    metrics ``<prefix>/<name>``; training lines have ``loss``."""
    return 'loss' not in record and any('/' in key for key in record)


def metric_values(record: Dict[str, Any]) -> Dict[str, float]:
    """The metrics of a validation line, keyed without their prefix."""
    return {
        key.split('/', 1)[1]: value
        for key, value in record.items() if '/' in key
    }


def find_runs(work_dir: str) -> List[str]:
    """Return the run folders of ``work_dir`` that have a
    ``vis_data/scalars.json``, oldest first."""
    runs = [
        path for path in glob.glob(osp.join(work_dir, '*'))
        if RUN_DIR_PATTERN.match(osp.basename(path))
        and osp.isfile(osp.join(path, 'vis_data', 'scalars.json'))
    ]
    return sorted(runs, key=osp.basename)


def read_scalars(path: str) -> List[Dict[str, Any]]:
    """Read a scalars.json file: one JSON object per line."""
    records = []
    with open(path, encoding='utf-8') as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise WorkDirError(
                    f'{path}, line {number}, is not valid JSON ({error}); '
                    f'the file should hold one JSON object per line as '
                    f'mmengine writes it.') from None
    return records


def merge_runs(runs: List[List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Concatenate the records of successive runs (oldest first).

    A resumed run restarts at its checkpoint, so it repeats the steps an
    earlier run logged after that checkpoint: those earlier records are
    dropped.
    """
    merged: List[Dict[str, Any]] = []
    for records in runs:
        if records:
            first_step = records[0]['step']
            merged = [r for r in merged if r['step'] < first_step]
            merged.extend(records)
    return merged


def find_config_name(work_dir: str, run_config: str) -> str:
    """Return the file stem of the config that trained ``work_dir``.

    The runner dumps the config both to ``<work_dir>/<config name>.py`` and
    to ``<run>/vis_data/config.py``; only the former keeps the file name.
    When a work dir holds several ``.py`` files (a resume with another
    config file), the one with the same text as ``run_config`` (the latest
    run's ``vis_data/config.py``) is taken.
    """
    candidates = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(candidates) == 1:
        return osp.splitext(osp.basename(candidates[0]))[0]
    with open(run_config, encoding='utf-8') as file:
        run_text = file.read()
    matches = []
    for path in candidates:
        with open(path, encoding='utf-8') as file:
            if file.read() == run_text:
                matches.append(path)
    if len(matches) != 1:
        found = ', '.join(map(osp.basename, candidates)) or 'none'
        raise WorkDirError(
            f'cannot tell which config trained {work_dir}: expected one '
            f'<config name>.py next to its checkpoints, or one with the '
            f'same text as {run_config}; found: {found}. Keep only the '
            f'dump of the config that trained it.')
    return osp.splitext(osp.basename(matches[0]))[0]


def load_run_config(path: str) -> Config:
    """Read a run's config dump ``path``; it must have a model dict with a
    type."""
    try:
        cfg = Config.fromfile(path)
    # A config is Python: reading it can fail in any way (syntax, imports).
    except Exception as error:
        raise WorkDirError(f'cannot read the config {path}: {error}') from None
    model = cfg.get('model')
    if not isinstance(model, dict) or 'type' not in model:
        raise WorkDirError(f'{path} has no model dict with a type; it should '
                           f'be the config dump mmengine writes.')
    return cfg


def coco_ann_file(evaluator: Any) -> Optional[str]:
    """The ``ann_file`` of the first ``CocoMetric`` of an evaluator config
    (a dict or a list of them), None if it has none."""
    metrics = evaluator if isinstance(evaluator,
                                      (list, tuple)) else [evaluator]
    for metric in metrics:
        if isinstance(metric, dict) and metric.get('type') in (
                COCO_METRIC_TYPES) and metric.get('ann_file'):
            return metric['ann_file']
    return None


def load_work_dir(path: str) -> WorkDir:
    """Read a training work dir.

    The detector and variant come from the latest run's
    ``vis_data/config.py``; training and validation records from all runs.

    Raises:
        WorkDirError: If ``path`` is not a work dir with at least one run,
            or a file in it cannot be read.
    """
    if not osp.isdir(path):
        raise WorkDirError(f'{path} is not a directory; pass the work dir '
                           f'of a training run.')
    runs = find_runs(path)
    if not runs:
        raise WorkDirError(
            f'{path} has no training run: expected '
            f'{path}/<YYYYmmdd_HHMMSS>/vis_data/scalars.json, written by '
            f"mmengine's LocalVisBackend (mmdet's default visualizer).")
    run_config = osp.join(runs[-1], 'vis_data', 'config.py')
    if not osp.isfile(run_config):
        raise WorkDirError(f'{run_config} is missing; the analyses read the '
                           f'detector and variant from it.')
    cfg = load_run_config(run_config)
    model = cfg.model
    scalars = [
        read_scalars(osp.join(run, 'vis_data', 'scalars.json')) for run in runs
    ]
    return WorkDir(
        path=path,
        config_name=find_config_name(path, run_config),
        model_type=model['type'],
        yolor=contains_yolor(model),
        train_records=merge_runs([[r for r in records if 'loss' in r]
                                  for records in scalars]),
        val_records=merge_runs([[r for r in records if is_metric_record(r)]
                                for records in scalars]),
        seed=(cfg.get('randomness') or {}).get('seed'),
        val_ann_file=coco_ann_file(cfg.get('val_evaluator')))


def load_work_dirs(paths: Sequence[str]) -> List[WorkDir]:
    """Read several work dirs; a work dir given twice is an error, since it
    would count as two seeds."""
    seen: Dict[str, str] = {}
    for path in paths:
        real = osp.realpath(path)
        if real in seen:
            raise WorkDirError(f'{path} is given twice (also as '
                               f'{seen[real]}); pass each work dir once.')
        seen[real] = path
    return [load_work_dir(path) for path in paths]
