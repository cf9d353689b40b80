# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""A paired bootstrap of COCO metrics over images.

Two models' predictions on the same images are evaluated on ``B``
resamples of the image set, drawn with replacement; both models share each
resample, so the spread of the difference reflects which images the test
set happens to hold, not the models' own noise.

The matching is pycocotools' own, run once per model, and the metrics of
every resample come from per-image weights
(:mod:`.weighted_coco_ap`), so that the full set's equal
``COCOeval.stats``. The two models are evaluated in two processes at once.
"""
import contextlib
import io
import multiprocessing
import os.path as osp
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO

from ..errors import InputError
from .prediction_files import PredictionSet, evaluated_images, load_predictions
from .weighted_coco_ap import WeightedCocoAP, coco_eval

DEFAULT_RESAMPLES = 1000


@dataclass
class MetricDelta:
    """One metric of the two models, as mmdet logs it (0-1).

    Attributes:
        baseline (float): On the full image set.
        yolor (float): On the full image set.
        delta (float, optional): ``yolor - baseline``; None where a model
            has no value (-1: no ground truth in that area range).
        ci95 (list[float], optional): The 2.5 and 97.5 percentiles of the
            resampled deltas.
        p_ahead (float, optional): The share of resamples in which YOLOR
            is ahead (delta > 0).
    """
    baseline: float
    yolor: float
    delta: Optional[float]
    ci95: Optional[List[float]]
    p_ahead: Optional[float]


@dataclass
class BootstrapResult:
    """The paired image bootstrap of two prediction files.

    Attributes:
        images (int): Images evaluated.
        resamples (int): Resamples drawn.
        seed (int): Seed of the resampling.
        metrics (dict[str, MetricDelta]): Keyed as mmdet logs them
            (``bbox_mAP``, ``segm_mAP_50``, ...), in :data:`AP_STATS`
            order per IoU type.
    """
    images: int
    resamples: int
    seed: int
    metrics: Dict[str, MetricDelta]

    def to_dict(self) -> dict:
        return asdict(self)


def resample_weights(num_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, num_images): how often each image is drawn when
    ``num_images`` images are drawn with replacement, per resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, num_images, size=(resamples, num_images))
    draws += np.arange(resamples)[:, None] * num_images
    return np.bincount(
        draws.ravel(),
        minlength=resamples * num_images).reshape(resamples, num_images)


@dataclass
class ModelEvaluation:
    """One model's AP entries (names of :data:`AP_STATS`) on the full image
    set and on each resample, and the seconds it took.

    Attributes:
        full (dict[str, float]): On the full set, as ``COCOeval.stats``.
        resampled (dict[str, np.ndarray]): Shape (B,), on each resample.
        seconds (dict[str, float]): ``match`` (pycocotools' matching and
            the reduction to weighted sums) and ``resample``.
    """
    full: Dict[str, float]
    resampled: Dict[str, np.ndarray]
    seconds: Dict[str, float]


def evaluate_model(coco_gt: COCO, predictions: PredictionSet, iou_type: str,
                   image_ids: Sequence[int],
                   weights: np.ndarray) -> ModelEvaluation:
    """Match ``predictions`` with pycocotools, then evaluate them on the
    full set and under each row of ``weights`` (B, num_images)."""
    start = time.perf_counter()
    weighted = WeightedCocoAP(
        coco_eval(coco_gt, predictions, iou_type, image_ids))
    matched = time.perf_counter()
    full = weighted.evaluate(np.ones((1, len(image_ids)), dtype=np.int64))
    resampled = weighted.evaluate(weights)
    return ModelEvaluation({name: float(v[0])
                            for name, v in full.items()}, resampled,
                           dict(
                               match=matched - start,
                               resample=time.perf_counter() - matched))


# What evaluate_both hands to its forked workers (inherited, not pickled: a
# COCO-sized annotation file and its predictions are large).
_WORKER_JOBS: list = []


def _evaluate_job(index: int) -> ModelEvaluation:
    return evaluate_model(*_WORKER_JOBS[index])


def evaluate_both(
        coco_gt: COCO,
        baseline: PredictionSet,
        yolor: PredictionSet,
        iou_type: str,
        image_ids: Sequence[int],
        weights: np.ndarray,
        parallel: bool = True) -> Tuple[ModelEvaluation, ModelEvaluation]:
    """:func:`evaluate_model` of both prediction sets under the same
    ``weights``: in two forked processes at once where ``parallel`` is set,
    the platform forks and this process runs no other thread (a fork copies
    locks that another thread may hold), else one after the other."""
    _WORKER_JOBS[:] = [(coco_gt, predictions, iou_type, list(image_ids),
                        weights) for predictions in (baseline, yolor)]
    forks = ('fork' in multiprocessing.get_all_start_methods()
             and threading.active_count() == 1)
    try:
        if parallel and forks:
            with ProcessPoolExecutor(
                    2, mp_context=multiprocessing.get_context('fork')) as pool:
                return tuple(pool.map(_evaluate_job, range(2)))
        return tuple(map(_evaluate_job, range(2)))
    finally:
        _WORKER_JOBS.clear()


def paired_deltas(baseline: ModelEvaluation, yolor: ModelEvaluation,
                  iou_type: str) -> Dict[str, MetricDelta]:
    """Both models' metrics and the bootstrap of their difference, keyed
    ``<iou_type>_<name>``; resamples in which a model has no value (-1: no
    ground truth in an area range) are left out of that metric's
    interval."""
    metrics = {}
    for name, base_value in baseline.full.items():
        yolor_value = yolor.full[name]
        delta = ci95 = p_ahead = None
        if base_value >= 0 and yolor_value >= 0:
            delta = yolor_value - base_value
            defined = ((baseline.resampled[name] >= 0) &
                       (yolor.resampled[name] >= 0))
            deltas = (yolor.resampled[name] -
                      baseline.resampled[name])[defined]
            if len(deltas):
                ci95 = [float(v) for v in np.percentile(deltas, [2.5, 97.5])]
                p_ahead = float(np.mean(deltas > 0))
        metrics[f'{iou_type}_{name}'] = MetricDelta(base_value, yolor_value,
                                                    delta, ci95, p_ahead)
    return metrics


def _silent(line: str) -> None:
    pass


def bootstrap_files(ann_file: str,
                    baseline_file: str,
                    yolor_file: str,
                    iou_types: Sequence[str] = ('bbox', ),
                    resamples: int = DEFAULT_RESAMPLES,
                    seed: int = 0,
                    parallel: bool = True,
                    log: Callable[[str], None] = _silent) -> BootstrapResult:
    """The paired image bootstrap of two prediction files (COCO results
    JSON or ``tools/test.py --out`` pickles) against ``ann_file``; ``log``
    is told each stage and its time.

    Raises:
        InputError: If the files cannot be compared (see
            :func:`~.prediction_files.evaluated_images`), before anything
            is evaluated.
    """
    if resamples < 1:
        raise InputError(f'--resamples must be at least 1, got {resamples}')
    if not osp.isfile(ann_file):
        raise InputError(f'annotation file {ann_file} does not exist')
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(ann_file)
    baseline = load_predictions(baseline_file, coco_gt)
    yolor = load_predictions(yolor_file, coco_gt)
    image_ids = evaluated_images(ann_file, coco_gt, baseline, yolor, iou_types)
    weights = resample_weights(len(image_ids), resamples, seed)
    metrics: Dict[str, MetricDelta] = {}
    for iou_type in iou_types:
        start = time.perf_counter()
        log(f'[bootstrap] {iou_type}: matching both files on '
            f'{len(image_ids)} images (pycocotools), then {resamples} '
            f'resamples...')
        pair = evaluate_both(coco_gt, baseline, yolor, iou_type, image_ids,
                             weights, parallel)
        metrics.update(paired_deltas(*pair, iou_type))
        log(f'[bootstrap] {iou_type}: done in '
            f'{time.perf_counter() - start:.1f} s (matching '
            f'{max(e.seconds["match"] for e in pair):.1f} s, resampling '
            f'{max(e.seconds["resample"] for e in pair):.1f} s)')
    return BootstrapResult(len(image_ids), resamples, seed, metrics)


def points(value: Optional[float], signed: bool = False) -> str:
    """A metric as logged (0.3746) in AP points as printed (37.5);
    ``-`` for None or -1 (no ground truth)."""
    if value is None or (not signed and value < 0):
        return '-'
    if not signed:
        return f'{value * 100:.1f}'
    # +0.0 rather than -0.0
    return f'{round(value * 100, 1) + 0.0:+.1f}'


def format_bootstrap_table(result: BootstrapResult) -> str:
    """A markdown table: per metric the full-set values (AP points), the
    difference, its 95 % interval and how often YOLOR is ahead."""
    lines = [
        f'Paired bootstrap over {result.images} images '
        f'({result.resamples} resamples, seed {result.seed}); AP in points.',
        '',
        '| metric | baseline | YOLOR | Δ | 95 % interval | YOLOR ahead in |',
        '| :-- | --: | --: | --: | :-: | --: |',
    ]
    for name, metric in result.metrics.items():
        interval = '-' if metric.ci95 is None else (
            f'[{points(metric.ci95[0], True)}, '
            f'{points(metric.ci95[1], True)}]')
        ahead = '-' if metric.p_ahead is None else f'{metric.p_ahead:.1%}'
        lines.append(f'| {name} | {points(metric.baseline)} | '
                     f'{points(metric.yolor)} | '
                     f'{points(metric.delta, True)} | {interval} | {ahead} |')
    return '\n'.join(lines)
