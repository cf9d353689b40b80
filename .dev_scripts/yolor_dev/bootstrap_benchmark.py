# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The logic of ``.dev_scripts/benchmark_bootstrap.py``: a COCO-sized
synthetic case (ground truth and two models' predictions), the image
bootstrap timed stage by stage, and its full-set values against
pycocotools' ``COCOeval.stats``."""
import contextlib
import io
import json
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
from pycocotools.coco import COCO

from mmdet_yolor.analysis.image_bootstrap import (evaluate_both, paired_deltas,
                                                  resample_weights)
from mmdet_yolor.analysis.prediction_files import (evaluated_images,
                                                   load_predictions)
from mmdet_yolor.analysis.weighted_coco_ap import AP_STATS, coco_eval

IMAGE_SIZE = 640


@dataclass
class CaseSettings:
    """The synthetic case; the defaults are COCO val2017's size.

    Attributes:
        images (int): Images.
        categories (int): Categories.
        objects (float): Mean objects an image (COCO: 7.3).
        detections (int): Detections an image (mmdet's max_per_img).
        found (tuple[float, float]): Share of the objects the baseline and
            the YOLOR model find.
        seed (int): Seed of the case.
    """
    images: int = 5000
    categories: int = 80
    objects: float = 7.3
    detections: int = 100
    found: Tuple[float, float] = (0.60, 0.62)
    seed: int = 0


def _boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` boxes (x, y, w, h) of COCO-like sizes: a log-uniform side
    from 8 to 400 pixels, so all three area ranges occur."""
    sides = np.exp(rng.uniform(np.log(8), np.log(400), size=(count, 2)))
    corners = rng.uniform(0, 1, size=(count, 2)) * (IMAGE_SIZE - sides)
    return np.concatenate([corners, sides], axis=1)


def synthetic_case(settings: CaseSettings) -> Tuple[dict, List[List[dict]]]:
    """A COCO annotation dict and the results of two models: each finds a
    share of the objects (a jittered box of the right class) and fills up
    to ``detections`` an image with random boxes; scores favour found
    objects."""
    rng = np.random.default_rng(settings.seed)
    counts = rng.poisson(settings.objects, size=settings.images)
    image_of = np.repeat(np.arange(1, settings.images + 1), counts)
    boxes = _boxes(rng, len(image_of))
    labels = rng.integers(1, settings.categories + 1, size=len(image_of))
    annotations = [
        dict(
            id=i + 1,
            image_id=int(image_of[i]),
            category_id=int(labels[i]),
            bbox=boxes[i].tolist(),
            area=float(boxes[i, 2] * boxes[i, 3]),
            iscrowd=0) for i in range(len(image_of))
    ]
    gt = dict(
        images=[
            dict(
                id=i,
                file_name=f'{i:012d}.jpg',
                width=IMAGE_SIZE,
                height=IMAGE_SIZE) for i in range(1, settings.images + 1)
        ],
        annotations=annotations,
        categories=[
            dict(id=c, name=f'class{c}')
            for c in range(1, settings.categories + 1)
        ])
    models = []
    for found in settings.found:
        hit = rng.random(len(image_of)) < found
        jitter = rng.normal(
            0, 0.06, size=(hit.sum(), 4)) * np.repeat(
                boxes[hit, 2:], 2, axis=1)
        found_boxes = boxes[hit] + jitter
        found_boxes[:, 2:] = np.maximum(found_boxes[:, 2:], 1)
        per_image = np.bincount(
            image_of[hit], minlength=settings.images + 1)[1:]
        fill = np.maximum(settings.detections - per_image, 0)
        fill_image = np.repeat(np.arange(1, settings.images + 1), fill)
        image_ids = np.concatenate([image_of[hit], fill_image])
        categories = np.concatenate([
            labels[hit],
            rng.integers(1, settings.categories + 1, size=len(fill_image))
        ])
        all_boxes = np.concatenate([found_boxes, _boxes(rng, len(fill_image))])
        scores = np.concatenate([
            rng.uniform(0.3, 1.0, size=hit.sum()),
            rng.uniform(0.05, 0.7, size=len(fill_image))
        ])
        models.append([
            dict(
                image_id=int(image_ids[i]),
                category_id=int(categories[i]),
                bbox=[round(v, 2) for v in all_boxes[i].tolist()],
                score=round(float(scores[i]), 4))
            for i in range(len(image_ids))
        ])
    return gt, models


def write_case(settings: CaseSettings, out_dir: str) -> Tuple[str, str, str]:
    """Write the case as an annotation file and two results JSON files;
    return their paths."""
    gt, models = synthetic_case(settings)
    paths = []
    for name, obj in (('annotations', gt), ('baseline', models[0]),
                      ('yolor', models[1])):
        path = osp.join(out_dir, f'{name}.json')
        with open(path, 'w', encoding='utf-8') as file:
            json.dump(obj, file)
        paths.append(path)
    return tuple(paths)


def run_benchmark(ann_file: str,
                  baseline_file: str,
                  yolor_file: str,
                  resamples: int,
                  seed: int = 0) -> Dict:
    """Time the bootstrap command's stages on the files and compare its
    full-set values with pycocotools' ``COCOeval.stats`` of each file.

    Returns:
        dict: ``seconds``: ``load`` (the files, checked), ``match`` and
        ``resample`` (the slower of the two models, which run side by side
        in two processes), ``command`` (the whole, as the tool runs it);
        ``detections``; ``max_difference``, the largest absolute difference
        from pycocotools over the six AP entries of both models; and the
        ``metrics``.
    """
    seconds = {}
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(ann_file)
    baseline = load_predictions(baseline_file, coco_gt)
    yolor = load_predictions(yolor_file, coco_gt)
    image_ids = evaluated_images(ann_file, coco_gt, baseline, yolor, ['bbox'])
    seconds['load'] = time.perf_counter() - start
    weights = resample_weights(len(image_ids), resamples, seed)
    pair = evaluate_both(coco_gt, baseline, yolor, 'bbox', image_ids, weights)
    metrics = paired_deltas(*pair, 'bbox')
    seconds['command'] = time.perf_counter() - start
    for stage in ('match', 'resample'):
        seconds[stage] = max(evaluation.seconds[stage] for evaluation in pair)
    difference = 0.0
    for predictions, side in ((baseline, 'baseline'), (yolor, 'yolor')):
        reference = coco_eval(coco_gt, predictions, 'bbox', image_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            reference.accumulate()
            reference.summarize()
        for index, (name, *_) in enumerate(AP_STATS):
            ours = getattr(metrics[f'bbox_{name}'], side)
            difference = max(difference,
                             abs(ours - float(reference.stats[index])))
    return dict(
        seconds=seconds,
        detections=len(baseline.detections) + len(yolor.detections),
        max_difference=difference,
        metrics={name: m.__dict__
                 for name, m in metrics.items()})
