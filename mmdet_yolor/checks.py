# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Check a run's inputs before anything is written.

``tools/train.py`` and ``tools/test.py`` call :func:`check_inputs` before
building the runner (which creates the work dir), so a wrong annotation file
or checkpoint stops the run with a message naming the file, and leaves
nothing behind. Each check raises :class:`~mmdet_yolor.errors.InputError`.
"""
import glob
import json
import os.path as osp
import zipfile
from typing import Dict, Iterator, List

from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config

from .compat.resume import load_from_local
from .errors import CheckpointError, InputError
from .models.layers.implicit import is_implicit_parameter

# Boxes may reach this many pixels past the image border (COCO's own
# annotations do by fractions of a pixel).
BOX_TOLERANCE = 1.0


def check_annotation_file(path: str) -> None:
    """Check that a COCO annotation file exists, is JSON with ``images``,
    ``annotations`` and ``categories``, and has every box inside its
    image."""
    if not osp.isfile(path):
        raise InputError(f'annotation file {path} does not exist; check '
                         f'data_root and ann_file of the dataset config')
    try:
        with open(path) as f:
            coco = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f'annotation file {path} is not valid JSON: '
                         f'{error}') from None
    for key in ('images', 'annotations', 'categories'):
        if key not in coco:
            raise InputError(f"annotation file {path} has no '{key}' list; "
                             f'it is not in COCO format')
    sizes = {image['id']: image for image in coco['images']}
    for annotation in coco['annotations']:
        image = sizes.get(annotation['image_id'])
        if image is None:
            raise InputError(
                f'annotation file {path}: annotation {annotation["id"]} '
                f'refers to image id {annotation["image_id"]}, which is not '
                f'in its images')
        x, y, w, h = annotation['bbox']
        if (x < -BOX_TOLERANCE or y < -BOX_TOLERANCE
                or x + w > image['width'] + BOX_TOLERANCE
                or y + h > image['height'] + BOX_TOLERANCE):
            raise InputError(
                f'annotation file {path}: annotation {annotation["id"]} has '
                f'bbox {annotation["bbox"]} (x, y, w, h) outside its '
                f'{image["width"]}x{image["height"]} image '
                f'{image.get("file_name", image["id"])}')


def _datasets(dataset_cfg: dict) -> Iterator[dict]:
    """The leaf dataset configs of a dataset config (unwrapping
    ``dataset``/``datasets`` of dataset wrappers)."""
    if 'datasets' in dataset_cfg:
        for child in dataset_cfg['datasets']:
            yield from _datasets(child)
    elif 'dataset' in dataset_cfg:
        yield from _datasets(dataset_cfg['dataset'])
    else:
        yield dataset_cfg


def annotation_files(cfg: Config, loaders: List[str]) -> List[str]:
    """The COCO-style JSON annotation files the datasets of ``loaders`` (e.g.
    ``['train_dataloader', 'val_dataloader']``) read. The file of a
    dataset class that generates its data on first use (one with
    ``GENERATES_ANNOTATIONS = True``) is not listed while absent."""
    files = []
    for loader in loaders:
        if not cfg.get(loader):
            continue
        for dataset in _datasets(cfg[loader]['dataset']):
            ann_file = dataset.get('ann_file', '')
            if not ann_file.endswith('.json'):
                continue
            path = osp.join(dataset.get('data_root') or '', ann_file)
            dataset_type = DATASETS.get(dataset.get('type', ''))
            generated = getattr(dataset_type, 'GENERATES_ANNOTATIONS', False)
            if generated and not osp.exists(path):
                continue
            if path not in files:
                files.append(path)
    return files


def _example(keys: List[str]) -> str:
    return f' (e.g. {sorted(keys)[0]})' if keys else ''


def check_checkpoint_fits(cfg: Config, checkpoint: str, exact: bool) -> None:
    """Check that ``checkpoint`` holds weights of the model of ``cfg``.

    Args:
        cfg (Config): The run's config.
        checkpoint (str): A local checkpoint file.
        exact (bool): Every key and shape must match (resuming, testing).
            Otherwise (``load_from`` warm starts) implicit parameters may be
            missing, shapes may differ (fine-tuning to other classes), but
            at least half of the model's other parameters must be found.
    """
    state = load_from_local(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    # a test-time augmentation wrapper holds the detector as `module`
    model_cfg = cfg.model.get('module', cfg.model)
    model = MODELS.build(model_cfg).state_dict()
    missing = [key for key in model if key not in state]
    unexpected = [key for key in state if key not in model]
    reshaped = [
        f'{key}: {tuple(state[key].shape)} in the checkpoint, '
        f'{tuple(model[key].shape)} in the model' for key in model
        if key in state and state[key].shape != model[key].shape
    ]
    source = getattr(cfg, 'filename', None) or 'the config'
    if exact:
        if not (missing or unexpected or reshaped):
            return
        implicit_only = all(is_implicit_parameter(key) for key in missing)
        hint = (' It has no implicit parameters: was it trained without '
                'YOLOR? Use the baseline config.' if missing and implicit_only
                and not unexpected and not reshaped else '')
        raise CheckpointError(
            f'checkpoint {checkpoint} does not fit the model of {source}: '
            f'{len(missing)} model parameters missing from it'
            f'{_example(missing)}, {len(unexpected)} unknown to the model'
            f'{_example(unexpected)}, {len(reshaped)} of another shape'
            f'{_example(reshaped)}.{hint}')
    plain = [key for key in model if not is_implicit_parameter(key)]
    found = [key for key in plain if key in state]
    if len(found) < len(plain) / 2:
        raise CheckpointError(
            f'checkpoint {checkpoint} does not fit the model of {source} '
            f'(another architecture?): only {len(found)} of its '
            f'{len(plain)} parameters are in the checkpoint'
            f'{_example(missing)}.')


def check_inputs(cfg: Config, loaders: List[str]) -> None:
    """Check the annotation files of ``loaders`` and the checkpoint the run
    loads (``cfg.load_from``; resumed or tested runs need an exact fit)."""
    for path in annotation_files(cfg, loaders):
        check_annotation_file(path)
    checkpoint = cfg.get('load_from')
    if checkpoint and '://' not in checkpoint:
        exact = bool(cfg.get('resume')) or 'train_dataloader' not in loaders
        check_checkpoint_fits(cfg, checkpoint, exact)


def _is_intact(checkpoint: str) -> bool:
    """Whether a checkpoint file is complete: torch writes zip archives,
    whose directory at the end is missing from a truncated file."""
    try:
        with zipfile.ZipFile(checkpoint):
            return True
    except (OSError, zipfile.BadZipFile):
        return False


def find_resumable_checkpoint(work_dir: str) -> Dict[str, str]:
    """The checkpoint ``--resume`` (auto) continues from, and why.

    The one ``last_checkpoint`` names when it is intact, else the newest
    intact ``*.pth`` of ``work_dir``: a job killed while writing either
    file must still resume.

    Returns:
        dict: ``checkpoint`` (path, or None to start afresh) and ``note``.
    """
    named = ''
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and _is_intact(named):
            return dict(checkpoint=named, note=f'resuming from {named}')
    newest_first = sorted(
        glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime, reverse=True)
    for path in newest_first:
        if _is_intact(path):
            damaged = (f'{named or "last_checkpoint"} is damaged; '
                       if osp.isfile(pointer) else '')
            return dict(
                checkpoint=path,
                note=f'{damaged}resuming from the newest intact checkpoint '
                f'{path}')
    return dict(
        checkpoint=None,
        note=f'no checkpoint to resume in {work_dir}; training from the '
        f'start')
