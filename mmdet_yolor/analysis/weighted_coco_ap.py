# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""COCO AP under per-image weights, equal to pycocotools'.

The matching is pycocotools' own (``COCOeval.evaluate``, set up as mmdet's
``CocoMetric`` sets it up: :func:`coco_eval`). What a resample of the
images changes is only how often each image counts, so
:class:`WeightedCocoAP` redoes ``COCOeval.accumulate`` with per-image
weights, vectorised over the resamples: an image drawn ``k`` times adds
``k`` times its true and false positives and its ground truth. Only the
true positives of each IoU threshold are points of the precision-recall
curve that can set an interpolated precision (a false positive never
raises precision; it counts through the running sums), and of a run of
true positives only the last, so the curves are sampled there alone. With
every weight 1 the values equal ``COCOeval.stats`` (to float round-off).
"""
import contextlib
import io
import itertools
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy import sparse

from .prediction_files import PredictionSet

# The AP entries of pycocotools' COCOeval.summarize, as mmdet's CocoMetric
# logs them (``<iou_type>_<name>``): name, IoU threshold (None: all),
# area range, and maxDets (None: summarize's literal 100; an int: that
# entry of params.maxDets).
AP_STATS: Tuple[Tuple[str, Optional[float], str, Optional[int]], ...] = (
    ('mAP', None, 'all', None),
    ('mAP_50', 0.5, 'all', 2),
    ('mAP_75', 0.75, 'all', 2),
    ('mAP_s', None, 'small', 2),
    ('mAP_m', None, 'medium', 2),
    ('mAP_l', None, 'large', 2),
)
# mmdet's CocoMetric evaluates with these maxDets (its proposal_nums).
MMDET_MAX_DETS = (100, 300, 1000)
# Resamples evaluated at once: bounds the memory of the running sums.
_CHUNK_ELEMENTS = 1 << 24


class _Category(NamedTuple):
    """One category's detections for an area range and maxDets, in
    ``COCOeval.accumulate``'s order: each one's image (D,) and whether it
    is a true or a false positive at each IoU threshold (T, D); and each
    image's number of ground truths that are not ignored (num_images,)."""
    gt_count: np.ndarray
    images: np.ndarray
    true_positive: np.ndarray
    false_positive: np.ndarray


class _ThresholdPoints(NamedTuple):
    """The points of one IoU threshold's precision-recall curves, category
    after category, and where to read their running sums.

    Within a run of true positives that no false positive interrupts,
    precision only rises, so the run's last point holds the best precision
    of every recall the run passes: only the ends of runs are points.
    ``tp_images`` (M,) are the images of all true positives and
    ``tp_starts`` (K + 1,) where each category starts among them;
    ``point_tp`` (N,) indexes the true positive that ends each run,
    ``point_category`` (N,) its category and ``point_starts`` (K + 1,)
    where each category starts among the points. ``fp_ref_before`` (N,)
    indexes the running sum of the reference false positives (those of the
    first threshold) up to each point, among the sums :class:`_Curves`
    computes. ``diff_images`` and ``diff_signs`` are the detections whose
    false-positive flag differs from the reference (+1: a false positive
    here only, -1: at the reference only), ``diff_starts`` (K,) where each
    category starts among them, and ``diff_before`` (N,) indexes their
    running sum up to each point.
    """
    tp_images: np.ndarray
    tp_starts: np.ndarray
    point_tp: np.ndarray
    point_category: np.ndarray
    point_starts: np.ndarray
    fp_ref_before: np.ndarray
    diff_images: np.ndarray
    diff_signs: np.ndarray
    diff_starts: np.ndarray
    diff_before: np.ndarray


class _Curves(NamedTuple):
    """Every category's precision-recall points for one area range and
    maxDets, reduced to what weighted running sums need.

    ``gt_count`` (num_images, K) counts the ground truths that are not
    ignored. The reference false positives (category after category) count
    only through their running sum where a true positive or a category
    starts: ``fp_ref_segments`` (S, num_images) counts each image's
    reference false positives between two such places, so that the
    running sums there are the cumulative sum of its product with the
    weights; ``fp_ref_starts`` (K,) indexes where each category starts
    among them. ``thresholds`` holds the points of each IoU threshold.
    """
    gt_count: np.ndarray
    fp_ref_segments: sparse.csr_matrix
    fp_ref_starts: np.ndarray
    thresholds: List[_ThresholdPoints]


def _sorted_category(eval_imgs: list, offset: int, num_images: int,
                     max_det: int) -> Optional[_Category]:
    """The :class:`_Category` of ``eval_imgs[offset:offset + num_images]``
    (one category and area range), None where ``COCOeval.accumulate``
    finds no image with ground truth or detections."""
    present = [
        i for i, entry in enumerate(eval_imgs[offset:offset + num_images])
        if entry is not None
    ]
    if not present:
        return None
    entries = [eval_imgs[offset + i] for i in present]
    # One pass over each field: a COCO-sized set has millions of entries.
    gt_ignored = [entry['gtIgnore'] for entry in entries]
    gt_ends = np.cumsum(
        np.fromiter(map(len, gt_ignored), np.int64, len(entries)))
    kept = np.concatenate([[0], np.cumsum(np.concatenate(gt_ignored) == 0)])
    gt_count = np.zeros(num_images, dtype=np.int64)
    gt_count[present] = kept[gt_ends] - kept[np.concatenate([[0], gt_ends[:-1]
                                                             ])]
    scores = [entry['dtScores'][0:max_det] for entry in entries]
    lengths = np.fromiter(map(len, scores), np.int64, len(entries))
    images = np.repeat(np.asarray(present, dtype=np.int64), lengths)
    scores = np.fromiter(
        itertools.chain.from_iterable(scores), float, int(lengths.sum()))
    # accumulate's order: a stable sort by score over the images in order
    order = np.argsort(-scores, kind='mergesort')
    matched = np.concatenate([e['dtMatches'][:, 0:max_det] for e in entries],
                             axis=1)[:, order]
    ignored = np.concatenate([e['dtIgnore'][:, 0:max_det] for e in entries],
                             axis=1)[:, order]
    counted = np.logical_not(ignored)
    return _Category(gt_count, images[order], np.logical_and(matched, counted),
                     np.logical_and(np.logical_not(matched), counted))


def _curves(categories: Sequence[Optional[_Category]], num_images: int,
            num_thresholds: int) -> _Curves:
    """Concatenate the categories' points into one :class:`_Curves`."""
    present = [(k, c) for k, c in enumerate(categories) if c is not None]
    gt_count = np.zeros((num_images, len(categories)), dtype=np.int64)
    for k, category in present:
        gt_count[:, k] = category.gt_count
    ref_positions = [np.flatnonzero(c.false_positive[0]) for _, c in present]
    ref_sizes = np.zeros(len(categories), dtype=np.int64)
    for (k, _), positions in zip(present, ref_positions):
        ref_sizes[k] = len(positions)
    fp_ref_starts = np.concatenate([[0], np.cumsum(ref_sizes)[:-1]])
    fp_ref_images = np.concatenate(
        [c.images[p] for (_, c), p in zip(present, ref_positions)] +
        [np.zeros(0, dtype=np.int64)])
    thresholds = []
    for t in range(num_thresholds):
        parts = {
            name: []
            for name in _ThresholdPoints._fields
            if not name.endswith('_starts')
        }
        sizes = {
            name: np.zeros(len(categories), dtype=np.int64)
            for name in ('tp', 'point', 'diff')
        }
        tp_total = diff_total = 0
        for (k, category), ref in zip(present, ref_positions):
            tp = np.flatnonzero(category.true_positive[t])
            false_positive = category.false_positive[t]
            fp_before = np.searchsorted(
                np.flatnonzero(false_positive), tp, side='right')
            # a run ends where a false positive follows before the next
            ends = np.flatnonzero(np.diff(fp_before, append=np.inf) > 0)
            changed = np.flatnonzero(
                false_positive != category.false_positive[0])
            sizes['tp'][k], sizes['point'][k] = len(tp), len(ends)
            sizes['diff'][k] = len(changed)
            parts['tp_images'].append(category.images[tp])
            parts['point_tp'].append(tp_total + ends)
            parts['point_category'].append(np.full(len(ends), k))
            parts['fp_ref_before'].append(
                fp_ref_starts[k] +
                np.searchsorted(ref, tp[ends], side='right'))
            parts['diff_images'].append(category.images[changed])
            parts['diff_signs'].append(
                np.where(false_positive[changed], 1, -1))
            parts['diff_before'].append(
                diff_total + np.searchsorted(changed, tp[ends], side='right'))
            tp_total += len(tp)
            diff_total += len(changed)
        joined = {
            name: np.concatenate(values + [np.zeros(0)]).astype(np.int64)
            for name, values in parts.items()
        }
        joined['tp_starts'] = np.concatenate([[0], np.cumsum(sizes['tp'])])
        joined['point_starts'] = np.concatenate([[0],
                                                 np.cumsum(sizes['point'])])
        joined['diff_starts'] = np.concatenate([[0],
                                                np.cumsum(sizes['diff'])[:-1]])
        thresholds.append(joined)
    # The places where a running sum of reference false positives is read;
    # each segment sums the false positives from the place before.
    places = np.unique(
        np.concatenate([fp_ref_starts] +
                       [joined['fp_ref_before'] for joined in thresholds]))
    segment = np.searchsorted(places, np.arange(len(fp_ref_images)), 'right')
    read = segment < len(places)
    fp_ref_segments = sparse.csr_matrix(
        (np.ones(read.sum()), (segment[read], fp_ref_images[read])),
        shape=(len(places), num_images))
    for joined in thresholds:
        joined['fp_ref_before'] = np.searchsorted(places,
                                                  joined['fp_ref_before'])
    return _Curves(gt_count, fp_ref_segments,
                   np.searchsorted(places, fp_ref_starts),
                   [_ThresholdPoints(**joined) for joined in thresholds])


class WeightedCocoAP:
    """COCO AP of one model's matched detections under per-image weights.

    Args:
        coco_eval (COCOeval): After ``evaluate()``, with the default
            ``useCats=1``.
    """

    def __init__(self, coco_eval: COCOeval):
        params = coco_eval.params
        self.image_ids: List[int] = list(params.imgIds)
        self.iou_thrs = np.asarray(params.iouThrs)
        self.rec_thrs = np.asarray(params.recThrs)
        num_images = len(self.image_ids)
        num_areas = len(params.areaRng)
        # maxDets beyond the most detections an image has select the same
        # detections: one curve serves them all
        most = max((len(e['dtScores']) for e in coco_eval.evalImgs if e),
                   default=0)
        self.stats: Dict[str, Optional[Tuple[np.ndarray, Tuple[int,
                                                               int]]]] = {}
        self._curves: Dict[Tuple[int, int], _Curves] = {}
        for name, iou_thr, area, max_dets in AP_STATS:
            area_index = params.areaRngLbl.index(area)
            max_det = 100 if max_dets is None else params.maxDets[max_dets]
            if max_det not in params.maxDets:
                # summarize finds no such entry: -1, as pycocotools has it
                self.stats[name] = None
                continue
            if iou_thr is None:
                thresholds = np.arange(len(self.iou_thrs))
            else:
                thresholds = np.where(iou_thr == self.iou_thrs)[0]
            key = (area_index, min(max_det, most))
            if key not in self._curves:
                self._curves[key] = _curves([
                    _sorted_category(
                        coco_eval.evalImgs, k * num_areas * num_images +
                        area_index * num_images, num_images, key[1])
                    for k in range(len(params.catIds))
                ], num_images, len(self.iou_thrs))
            self.stats[name] = (thresholds, key)

    @property
    def num_images(self) -> int:
        return len(self.image_ids)

    def evaluate(self, weights: np.ndarray) -> Dict[str, np.ndarray]:
        """The AP entries under ``weights``.

        Args:
            weights (np.ndarray): Shape (B, num_images), how often each
                image (in ``image_ids`` order) counts in each of B
                resamples; non-negative integers.

        Returns:
            dict[str, np.ndarray]: Per name of :data:`AP_STATS`, shape (B,):
            the value as ``COCOeval.stats`` has it, -1 where no category
            has ground truth.
        """
        weights = np.asarray(weights)
        if weights.ndim != 2 or weights.shape[1] != self.num_images:
            raise ValueError(f'weights must have shape (B, {self.num_images})'
                             f', got {weights.shape}')
        # the widest array a resample needs: its running sums, or the
        # thresholds of its categories
        widest = max([1] + [
            max(curves.fp_ref_segments.shape[0], 2 * len(points.tp_images),
                len(self.rec_thrs) * curves.gt_count.shape[1])
            for curves in self._curves.values() for points in curves.thresholds
        ])
        chunk = max(1, _CHUNK_ELEMENTS // widest)
        parts = [
            self._evaluate_chunk(weights[start:start + chunk])
            for start in range(0, len(weights), chunk)
        ]
        return {
            name: np.concatenate([part[name] for part in parts])
            for name in self.stats
        }

    def _evaluate_chunk(self, weights: np.ndarray) -> Dict[str, np.ndarray]:
        weights = np.ascontiguousarray(weights, dtype=np.int64)
        sums = {
            key: self._precision_sums(curves, weights)
            for key, curves in self._curves.items()
        }
        values = {}
        for name, stat in self.stats.items():
            if stat is None:
                values[name] = np.full(len(weights), -1.0)
                continue
            thresholds, key = stat
            precision_sum, valid = sums[key]
            total = (precision_sum[thresholds] * valid).sum(axis=(0, 2))
            count = valid.sum(axis=1) * len(thresholds) * len(self.rec_thrs)
            with np.errstate(invalid='ignore', divide='ignore'):
                values[name] = np.where(count > 0, total / count, -1.0)
        return values

    def _precision_sums(self, curves: _Curves, weights: np.ndarray):
        """Per IoU threshold, resample and category, the sum over recall
        thresholds of the interpolated precision (T, B, K); and whether the
        category has ground truth (B, K)."""
        gt_total = weights @ curves.gt_count
        fp_ref = np.cumsum(
            curves.fp_ref_segments @ weights.T.astype(float), axis=0).T
        sums = np.zeros((len(curves.thresholds), ) + gt_total.shape)
        for t, points in enumerate(curves.thresholds):
            if not len(points.tp_images):
                continue
            category = points.point_category
            tp = _running_sum(np.take(weights, points.tp_images, axis=1))
            tp = (
                np.take(tp, points.point_tp + 1, axis=1) -
                np.take(tp, points.tp_starts[category], axis=1))
            fp = (
                np.take(fp_ref, points.fp_ref_before, axis=1) -
                np.take(fp_ref, curves.fp_ref_starts[category], axis=1))
            if len(points.diff_images):
                diff = _running_sum(
                    np.take(weights, points.diff_images, axis=1) *
                    points.diff_signs)
                fp += (
                    np.take(diff, points.diff_before, axis=1) -
                    np.take(diff, points.diff_starts[category], axis=1))
            sums[t] = _interpolated_sums(tp, fp, gt_total, points,
                                         self.rec_thrs)
        return sums, gt_total > 0


def _interpolated_sums(tp: np.ndarray, fp: np.ndarray, gt_total: np.ndarray,
                       points: _ThresholdPoints,
                       rec_thrs: np.ndarray) -> np.ndarray:
    """(B, K): per category, the sum over recall thresholds of the
    interpolated precision, from the running true- and false-positive sums
    (B, N) at the points, as ``COCOeval.accumulate`` computes it:
    a threshold takes the best precision from the first point that reaches
    it to the category's last, 0 if none reaches it. So each point adds
    its best precision onwards once for every threshold it reaches first.
    """
    category = points.point_category
    starts = points.point_starts[:-1]
    precision = tp / (fp + tp + np.spacing(1))
    # The best precision from each point to its category's last: one
    # running maximum from the end, each category lifted above the ones
    # after it so that their values do not carry over.
    lift = 2.0 * (len(starts) - 1 - category)
    best_after = np.maximum.accumulate(
        (precision + lift)[:, ::-1], axis=1)[:, ::-1] - lift
    with np.errstate(invalid='ignore', divide='ignore'):
        recall = tp / np.take(gt_total, category, axis=1)
    reached = _thresholds_reached(recall, rec_thrs)
    newly = np.diff(reached, axis=1, prepend=0)
    present = np.flatnonzero(np.diff(points.point_starts))
    newly[:, starts[present]] = reached[:, starts[present]]
    sums = np.zeros(gt_total.shape)
    sums[:, present] = np.add.reduceat(
        best_after * newly, starts[present], axis=1)
    return sums


def _thresholds_reached(recall: np.ndarray,
                        rec_thrs: np.ndarray) -> np.ndarray:
    """How many recall thresholds each recall reaches (``rec_thrs`` <=
    recall), as ``np.searchsorted(rec_thrs, recall, 'right')``: on
    pycocotools' evenly spaced thresholds from 0 to 1 by arithmetic, one
    step of correction for round-off, else by the search."""
    steps = len(rec_thrs) - 1
    if not (rec_thrs[0] == 0 and rec_thrs[-1] == 1
            and np.allclose(np.diff(rec_thrs), 1 / steps, rtol=1e-9, atol=0)):
        return np.searchsorted(rec_thrs, recall, side='right')
    # NaN (no ground truth) reaches nothing; it is masked out later
    recall = np.nan_to_num(recall, nan=0.0)
    reached = np.clip(
        np.floor(recall * steps).astype(np.int64) + 1, 0, steps + 1)
    too_many = rec_thrs[np.minimum(reached, steps + 1) - 1] > recall
    reached -= too_many
    too_few = (reached <= steps) & (
        rec_thrs[np.minimum(reached, steps)] <= recall)
    return reached + too_few


def _running_sum(values: np.ndarray) -> np.ndarray:
    """Cumulative sums along the columns with a leading zero column, so
    that column ``n`` is the sum of the first ``n`` columns."""
    out = np.zeros((len(values), values.shape[1] + 1), dtype=values.dtype)
    np.cumsum(values, axis=1, out=out[:, 1:])
    return out


def _load_results(coco_gt: COCO, results: List[dict]) -> COCO:
    """``coco_gt.loadRes(results)``; no results are a set without
    detections (loadRes fails on an empty list)."""
    if results:
        return coco_gt.loadRes(results)
    empty = COCO()
    empty.dataset = dict(
        images=list(coco_gt.dataset['images']),
        categories=list(coco_gt.dataset['categories']),
        annotations=[])
    empty.createIndex()
    return empty


def coco_eval(coco_gt: COCO,
              predictions: PredictionSet,
              iou_type: str,
              image_ids: Sequence[int],
              max_dets: Sequence[int] = MMDET_MAX_DETS) -> COCOeval:
    """pycocotools' evaluation of ``predictions``, set up as mmdet's
    ``CocoMetric`` sets it up (all categories, ``image_ids``, ``max_dets``),
    after ``evaluate()``: the matching that the bootstrap keeps."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = _load_results(coco_gt, predictions.results(iou_type))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.params.catIds = sorted(coco_gt.getCatIds())
        evaluator.params.imgIds = list(image_ids)
        evaluator.params.maxDets = list(max_dets)
        evaluator.evaluate()
    return evaluator
