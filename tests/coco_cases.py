# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Crafted COCO annotation and prediction files for the tests of the image
bootstrap: ground truth with crowd regions and objects of every area range,
and predictions made from it (found objects, misses, duplicates, false
positives, ties in score). Imported by name: pytest puts tests/ on
sys.path (tests/conftest.py)."""
import contextlib
import io
import json
import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet_yolor.analysis.weighted_coco_ap import AP_STATS

IMAGE_SIZE = 128


def _box_mask(box: Sequence[float],
              height: int = IMAGE_SIZE,
              width: int = IMAGE_SIZE) -> dict:
    """The RLE of a box-shaped mask on an image of that size."""
    x, y, w, h = (max(int(round(v)), 0) for v in box)
    mask = np.zeros((height, width), dtype=np.uint8, order='F')
    mask[y:y + h, x:x + w] = 1
    rle = mask_utils.encode(mask)
    rle['counts'] = rle['counts'].decode()
    return rle


def ground_truth(num_images: int = 24,
                 num_categories: int = 3,
                 crowd: bool = True,
                 seed: int = 0) -> dict:
    """A COCO annotation dict: 0-6 objects an image, small, medium and
    large (COCO's area ranges), some crowd regions, an image without
    objects, and a category that never occurs."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        images.append(
            dict(
                id=image_id,
                file_name=f'{image_id}.png',
                width=IMAGE_SIZE,
                height=IMAGE_SIZE))
        count = 0 if image_id == 1 else int(rng.integers(1, 7))
        for _ in range(count):
            side = float(rng.choice([20, 50, 100]) * rng.uniform(0.6, 1.0))
            x, y = rng.uniform(0, IMAGE_SIZE - side, size=2)
            box = [float(x), float(y), side, side]
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=image_id,
                    category_id=int(rng.integers(1, num_categories + 1)),
                    bbox=box,
                    area=side * side,
                    segmentation=_box_mask(box),
                    iscrowd=int(crowd and rng.random() < 0.15)))
    categories = [
        dict(id=c, name=f'class{c}') for c in range(1, num_categories + 2)
    ]
    return dict(images=images, annotations=annotations, categories=categories)


def predictions(gt: dict,
                seed: int = 0,
                found: float = 0.7,
                false_positives: int = 3,
                images: Optional[Sequence[int]] = None,
                masks: bool = False) -> List[Dict]:
    """COCO results for ``gt``: each object found with probability
    ``found`` (a shifted box), sometimes twice, plus ``false_positives``
    random boxes an image; scores are rounded to two decimals, so ties
    across images occur. ``images`` restricts them to those image ids."""
    rng = np.random.default_rng(seed)
    wanted = set(images) if images is not None else None
    results = []
    categories = [c['id'] for c in gt['categories']]
    for annotation in gt['annotations']:
        if wanted is not None and annotation['image_id'] not in wanted:
            continue
        if rng.random() > found:
            continue
        for _ in range(1 + int(rng.random() < 0.2)):
            x, y, w, h = annotation['bbox']
            shift = rng.normal(0, 0.08 * w, size=2)
            results.append(
                dict(
                    image_id=annotation['image_id'],
                    category_id=annotation['category_id'],
                    bbox=[float(x + shift[0]),
                          float(y + shift[1]), w, h],
                    score=round(float(rng.uniform(0.3, 1.0)), 2)))
    for image in gt['images']:
        if wanted is not None and image['id'] not in wanted:
            continue
        for _ in range(false_positives):
            side = float(rng.uniform(8, 80))
            x, y = rng.uniform(0, IMAGE_SIZE - side, size=2)
            results.append(
                dict(
                    image_id=image['id'],
                    category_id=int(rng.choice(categories[:-1])),
                    bbox=[float(x), float(y), side, side],
                    score=round(float(rng.uniform(0.05, 0.6)), 2)))
    if masks:
        sizes = {i['id']: (i['height'], i['width']) for i in gt['images']}
        for result in results:
            result['segmentation'] = _box_mask(result['bbox'],
                                               *sizes[result['image_id']])
    return results


def true_positives(gt: dict, images: Sequence[int]) -> List[Dict]:
    """An exact, confident detection of every object of ``images``."""
    wanted = set(images)
    return [
        dict(
            image_id=a['image_id'],
            category_id=a['category_id'],
            bbox=list(a['bbox']),
            score=0.99) for a in gt['annotations']
        if a['image_id'] in wanted and not a['iscrowd']
    ]


def write_empty_test_pickle(image_ids: Sequence[int], path) -> str:
    """The pickle ``tools/test.py --out`` writes for ``image_ids`` when the
    model detects nothing there (mmdet's DumpDetResults)."""
    import torch
    samples = [
        dict(
            img_id=i,
            pred_instances=dict(
                bboxes=torch.zeros((0, 4)),
                scores=torch.zeros(0),
                labels=torch.zeros(0, dtype=torch.long))) for i in image_ids
    ]
    with open(path, 'wb') as file:
        pickle.dump(samples, file)
    return str(path)


def write_json(obj, path) -> str:
    with open(path, 'w', encoding='utf-8') as file:
        json.dump(obj, file)
    return str(path)


def quiet(function, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def coco_of(gt: dict) -> COCO:
    coco = COCO()
    coco.dataset = gt
    quiet(coco.createIndex)
    return coco


def reference_stats(coco, results, iou_type, image_ids, max_dets):
    """pycocotools' own COCOeval.stats, set up as mmdet's CocoMetric sets
    it up (segm results without their box, as CocoMetric pops it)."""
    if iou_type == 'segm':
        results = [{k: v
                    for k, v in r.items() if k != 'bbox'} for r in results]
    dt = quiet(coco.loadRes, [dict(r) for r in results])
    evaluator = COCOeval(coco, dt, iou_type)
    evaluator.params.catIds = sorted(coco.getCatIds())
    evaluator.params.imgIds = list(image_ids)
    evaluator.params.maxDets = list(max_dets)
    quiet(evaluator.evaluate)
    quiet(evaluator.accumulate)
    quiet(evaluator.summarize)
    return evaluator.stats[:len(AP_STATS)]
