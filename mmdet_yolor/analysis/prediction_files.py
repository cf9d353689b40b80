# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Where the tools keep predictions, and reading them back.

``tools/train.py`` and ``tools/test.py`` keep the predictions of their COCO
evaluation in the work dir (:func:`keep_predictions`): mmdet's
``CocoMetric`` writes them there through its ``outfile_prefix`` as
``<work_dir>/predictions/<split>.bbox.json`` (and ``.segm.json`` for masks),
the last validation overwriting the earlier ones. The image bootstrap of
:mod:`.image_bootstrap` reads those files, or the pickle of
``tools/test.py --out``.
"""
import json
import os.path as osp
import pickle
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set

from pycocotools.coco import COCO

from ..errors import InputError

# The folder of a work dir that holds its kept predictions.
PREDICTIONS_DIR = 'predictions'
# CocoMetric's evaluator types, with and without the registry scope.
COCO_METRIC_TYPES = ('CocoMetric', 'mmdet.CocoMetric')


def predictions_prefix(work_dir: str, split: str) -> str:
    """The ``outfile_prefix`` under which an evaluation of ``split``
    (``'val'`` or ``'test'``) keeps its predictions in ``work_dir``."""
    return osp.join(work_dir, PREDICTIONS_DIR, split)


def kept_prediction_file(work_dir: str, split: str,
                         iou_type: str) -> Optional[str]:
    """The kept predictions of ``split`` for ``iou_type`` (``'bbox'`` or
    ``'segm'``) in ``work_dir``, or None if there are none."""
    path = f'{predictions_prefix(work_dir, split)}.{iou_type}.json'
    return path if osp.isfile(path) else None


def keep_predictions(evaluator: Any, prefix: str) -> Any:
    """``evaluator`` (an evaluator config, or a list of them) with every
    ``CocoMetric`` that sets no ``outfile_prefix`` writing its predictions
    under ``prefix``; other metrics and a prefix the config sets are left as
    they are."""
    if isinstance(evaluator, (list, tuple)):
        return type(evaluator)(
            keep_predictions(metric, prefix) for metric in evaluator)
    if (isinstance(evaluator, dict)
            and evaluator.get('type') in COCO_METRIC_TYPES
            and evaluator.get('outfile_prefix') is None):
        evaluator = type(evaluator)(evaluator, outfile_prefix=prefix)
    return evaluator


@dataclass
class PredictionSet:
    """The detections of one prediction file, in COCO results form.

    Attributes:
        path (str): The file they were read from.
        detections (list[dict]): ``image_id``, ``category_id``, ``score``
            and ``bbox`` (``[x, y, w, h]``) and/or ``segmentation`` (RLE).
        image_ids (set[int], optional): The images the file lists, with or
            without detections (a ``tools/test.py --out`` pickle); None for
            a results JSON, which lists only images with detections.
    """
    path: str
    detections: List[Dict[str, Any]]
    image_ids: Optional[Set[int]] = None

    @property
    def has_masks(self) -> bool:
        return bool(self.detections) and all('segmentation' in d
                                             for d in self.detections)

    def results(self, iou_type: str) -> List[Dict[str, Any]]:
        """Fresh result dicts for ``COCO.loadRes`` (which changes them) as
        mmdet's ``CocoMetric`` passes them: for ``'segm'`` without the box,
        so that pycocotools takes the mask's area for the area ranges."""
        geometry = 'bbox' if iou_type == 'bbox' else 'segmentation'
        return [
            dict(
                image_id=d['image_id'],
                category_id=d['category_id'],
                score=d['score'],
                **{geometry: d[geometry]}) for d in self.detections
        ]


def load_predictions(path: str, coco_gt: COCO) -> PredictionSet:
    """Read a prediction file: a COCO results JSON (what ``CocoMetric``
    writes with ``outfile_prefix``) or the pickle of ``tools/test.py
    --out``. A pickle's labels index the annotation file's categories in
    the file's order, as mmdet's ``CocoDataset`` numbers them.

    Raises:
        InputError: If the file is missing or is neither format.
    """
    if not osp.isfile(path):
        raise InputError(f'prediction file {path} does not exist')
    if path.endswith(('.pkl', '.pickle')):
        return _from_pickle(path, coco_gt)
    try:
        with open(path, encoding='utf-8') as file:
            records = json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f'{path} is not a COCO results JSON ({error}); pass the '
            f'<prefix>.bbox.json / .segm.json that CocoMetric writes with '
            f'outfile_prefix, or the .pkl of tools/test.py --out') from None
    if not isinstance(records, list) or not all(map(_is_result, records)):
        raise InputError(
            f'{path} is not a COCO results JSON: expected a list of '
            f'{{image_id, category_id, bbox, score[, segmentation]}} '
            f'objects, as CocoMetric writes with outfile_prefix')
    return PredictionSet(path, records)


def _is_result(record: Any) -> bool:
    """Whether ``record`` is one detection of a COCO results JSON."""
    return isinstance(record, dict) and all(
        key in record for key in ('image_id', 'category_id',
                                  'score')) and ('bbox' in record
                                                 or 'segmentation' in record)


def _from_pickle(path: str, coco_gt: COCO) -> PredictionSet:
    with open(path, 'rb') as file:
        try:
            samples = pickle.load(file)
        except (pickle.UnpicklingError, EOFError) as error:
            raise InputError(f'{path} is not a pickle of tools/test.py --out '
                             f'({error})') from None
    if not isinstance(samples, list) or any(
            not isinstance(s, dict) or 'img_id' not in s
            or 'pred_instances' not in s for s in samples):
        raise InputError(
            f'{path} is not a pickle of tools/test.py --out: expected a list '
            f'of data samples with img_id and pred_instances')
    category_ids = [
        category['id'] for category in coco_gt.dataset['categories']
    ]
    detections = []
    for sample in samples:
        pred = sample['pred_instances']
        labels = _as_list(pred['labels'])
        if labels and max(labels) >= len(category_ids):
            raise InputError(
                f'{path}: image {sample["img_id"]} has label {max(labels)}, '
                f'but the annotation file has only {len(category_ids)} '
                f'categories; the predictions are of another dataset')
        bboxes = _as_list(pred['bboxes'])
        scores = _as_list(pred['scores'])
        masks = pred.get('masks')
        for index, label in enumerate(labels):
            x1, y1, x2, y2 = bboxes[index]
            detection = dict(
                image_id=sample['img_id'],
                category_id=category_ids[label],
                bbox=[x1, y1, x2 - x1, y2 - y1],
                score=float(scores[index]))
            if masks is not None:
                mask = dict(masks[index])
                if isinstance(mask['counts'], bytes):
                    mask['counts'] = mask['counts'].decode()
                detection['segmentation'] = mask
            detections.append(detection)
    return PredictionSet(path, detections,
                         {sample['img_id']
                          for sample in samples})


def _as_list(values) -> list:
    """A tensor or array (or a list) as a Python list."""
    return values.tolist() if hasattr(values, 'tolist') else list(values)


def _ids(ids: Iterable[int], limit: int = 5) -> str:
    ids = sorted(ids)
    shown = ', '.join(map(str, ids[:limit]))
    return shown + (f' and {len(ids) - limit} more'
                    if len(ids) > limit else '')


def evaluated_images(ann_file: str, coco_gt: COCO, baseline: PredictionSet,
                     yolor: PredictionSet,
                     iou_types: Sequence[str]) -> List[int]:
    """The images both prediction sets are evaluated on, after checking
    that they can be compared: the annotation file's images, as mmdet's
    ``CocoMetric`` evaluates, or those a pickle lists.

    Raises:
        InputError: Naming both files and what differs, if the sets are of
            different images, name an image or category the annotation file
            lacks, or lack masks that ``iou_types`` asks for.
    """
    known_images = set(coco_gt.getImgIds())
    known_categories = set(coco_gt.getCatIds())
    for predictions in (baseline, yolor):
        images = {d['image_id'] for d in predictions.detections}
        images |= predictions.image_ids or set()
        unknown = images - known_images
        if unknown:
            raise InputError(
                f'{predictions.path} and {ann_file} differ: image id '
                f'{_ids(unknown)} of the predictions is not in the '
                f'annotation file; pass the annotation file they were '
                f'evaluated on')
        unknown = {d['category_id']
                   for d in predictions.detections} - known_categories
        if unknown:
            raise InputError(
                f'{predictions.path} and {ann_file} differ: category id '
                f'{_ids(unknown)} of the predictions is not in the '
                f'annotation file; pass the annotation file they were '
                f'evaluated on')
        if 'segm' in iou_types and not predictions.has_masks:
            raise InputError(
                f'{predictions.path} has no masks (segmentation), so '
                f'--iou-type segm cannot compare it with the other file; '
                f'pass the .segm.json of a mask model or --iou-type bbox')
    listed = [p for p in (baseline, yolor) if p.image_ids is not None]
    if not listed:
        return sorted(known_images)
    images = listed[0].image_ids
    for first, second in ((baseline, yolor), (yolor, baseline)):
        covered = first.image_ids or {d['image_id'] for d in first.detections}
        extra = covered - (
            second.image_ids if second.image_ids is not None else known_images)
        if extra:
            raise InputError(
                f'{baseline.path} and {yolor.path} are predictions for '
                f'different images: {first.path} has image id '
                f'{_ids(extra)}, which {second.path} does not list; '
                f'predict both models on the same images')
    return sorted(images)
