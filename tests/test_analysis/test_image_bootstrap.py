# Copyright (c) mmdet_yolor contributors. All rights reserved.
import contextlib
import io
import json
import os.path as osp

import coco_cases
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmdet_yolor.analysis.image_bootstrap import (AP_STATS, MMDET_MAX_DETS,
                                                  WeightedCocoAP,
                                                  bootstrap_files, coco_eval,
                                                  format_bootstrap_table,
                                                  resample_weights)
from mmdet_yolor.analysis.prediction_files import PredictionSet
from mmdet_yolor.datasets import generate_dataset


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


def full_set(weighted: WeightedCocoAP):
    values = weighted.evaluate(np.ones((1, weighted.num_images), dtype=int))
    return np.array([values[name][0] for name, *_ in AP_STATS])


@pytest.fixture(scope='module')
def shapes_val(tmp_path_factory):
    """The embedded dataset's validation annotations (40 images)."""
    root = str(tmp_path_factory.mktemp('shapes'))
    generate_dataset(root, num_train=1, num_val=40)
    ann_file = osp.join(root, 'annotations', 'instances_val.json')
    with open(ann_file, encoding='utf-8') as file:
        return ann_file, json.load(file)


@pytest.fixture(scope='module')
def crowd_case():
    """Crowd regions, every area range, an image without objects, a
    category without any, duplicates and ties in score."""
    gt = coco_cases.ground_truth(num_images=30, crowd=True)
    assert any(a['iscrowd'] for a in gt['annotations'])
    return gt, coco_of(gt)


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('max_dets', [(1, 10, 100), MMDET_MAX_DETS, (1, 2, 3)])
def test_full_set_equals_pycocotools_with_crowd_and_ignored_regions(
        crowd_case, iou_type, max_dets):
    gt, coco = crowd_case
    results = coco_cases.predictions(gt, seed=1, masks=iou_type == 'segm')
    # more detections than the smaller maxDets on one image
    results += [dict(r, score=0.01) for r in results if r['image_id'] == 2] * 3
    image_ids = sorted(coco.getImgIds())
    weighted = WeightedCocoAP(
        coco_eval(coco, PredictionSet('x', results), iou_type, image_ids,
                  max_dets))
    expected = reference_stats(coco, results, iou_type, image_ids, max_dets)
    np.testing.assert_allclose(
        full_set(weighted), expected, rtol=0, atol=1e-12)
    assert (expected > 0).sum() >= 5


def test_weights_equal_pycocotools_on_the_resampled_images(crowd_case):
    """A resample equals pycocotools on a dataset that holds each image as
    often as the resample draws it (distinct scores: no ties whose order
    the copies could change)."""
    gt, coco = crowd_case
    rng = np.random.default_rng(5)
    results = [
        dict(r, score=float(rng.uniform()))
        for r in coco_cases.predictions(gt, seed=2)
    ]
    image_ids = sorted(coco.getImgIds())
    weighted = WeightedCocoAP(
        coco_eval(coco, PredictionSet('x', results), 'bbox', image_ids))
    weights = resample_weights(len(image_ids), 4, seed=3)
    values = weighted.evaluate(weights)
    for row in weights:
        copies = dict(categories=gt['categories'], images=[], annotations=[])
        copied = []
        for image_id, count in zip(image_ids, row):
            for _ in range(count):
                new_id = len(copies['images']) + 1
                copies['images'].append(dict(coco.imgs[image_id], id=new_id))
                for annotation in coco.imgToAnns[image_id]:
                    copies['annotations'].append(
                        dict(
                            annotation,
                            image_id=new_id,
                            id=len(copies['annotations']) + 1))
                copied += [
                    dict(r, image_id=new_id) for r in results
                    if r['image_id'] == image_id
                ]
        copy_coco = coco_of(copies)
        expected = reference_stats(copy_coco, copied, 'bbox',
                                   sorted(copy_coco.getImgIds()),
                                   MMDET_MAX_DETS)
        index = np.flatnonzero((weights == row).all(axis=1))[0]
        ours = [values[name][index] for name, *_ in AP_STATS]
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_full_set_equals_pycocotools_on_the_embedded_val_set(
        shapes_val, tmp_path):
    ann_file, gt = shapes_val
    baseline = coco_cases.predictions(gt, seed=3, masks=True)
    yolor = coco_cases.predictions(gt, seed=4, found=0.8, masks=True)
    files = [
        coco_cases.write_json(results, tmp_path / f'{name}.json')
        for name, results in (('baseline', baseline), ('yolor', yolor))
    ]
    result = bootstrap_files(
        ann_file, *files, ['bbox', 'segm'], resamples=20, parallel=False)
    coco = quiet(COCO, ann_file)
    for iou_type in ('bbox', 'segm'):
        for side, results in (('baseline', baseline), ('yolor', yolor)):
            expected = reference_stats(coco, results, iou_type,
                                       sorted(coco.getImgIds()),
                                       MMDET_MAX_DETS)
            ours = [
                getattr(result.metrics[f'{iou_type}_{name}'], side)
                for name, *_ in AP_STATS
            ]
            np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    assert result.images == len(gt['images'])


@pytest.fixture(scope='module')
def pair_files(tmp_path_factory):
    """An annotation file and two prediction files of it."""
    root = tmp_path_factory.mktemp('pair')
    gt = coco_cases.ground_truth(num_images=60, crowd=False, seed=7)
    baseline = coco_cases.predictions(gt, seed=8)
    return (coco_cases.write_json(gt, root / 'ann.json'), gt, baseline, root)


def test_identical_predictions_differ_by_nothing(pair_files):
    ann_file, _, baseline, root = pair_files
    path = coco_cases.write_json(baseline, root / 'same.json')
    result = bootstrap_files(ann_file, path, path, resamples=50)
    for metric in result.metrics.values():
        assert metric.delta == 0
        assert metric.ci95 == [0, 0]
        assert metric.p_ahead == 0


def test_added_true_positives_give_an_interval_above_zero(pair_files):
    ann_file, gt, baseline, root = pair_files
    third = [image['id'] for image in gt['images']][::3]
    yolor = baseline + coco_cases.true_positives(gt, third)
    files = [
        coco_cases.write_json(results, root / f'{name}.json')
        for name, results in (('b', baseline), ('y', yolor))
    ]
    result = bootstrap_files(ann_file, *files, resamples=200)
    box = result.metrics['bbox_mAP']
    assert box.delta > 0 and box.ci95[0] > 0
    assert box.p_ahead == 1.0


def test_swapping_the_files_mirrors_every_number(pair_files):
    ann_file, gt, baseline, root = pair_files
    yolor = coco_cases.predictions(gt, seed=9)
    files = [
        coco_cases.write_json(results, root / f'{name}.json')
        for name, results in (('b2', baseline), ('y2', yolor))
    ]
    forward = bootstrap_files(ann_file, *files, resamples=100, seed=1)
    backward = bootstrap_files(
        ann_file, *reversed(files), resamples=100, seed=1)
    for name, ahead in forward.metrics.items():
        behind = backward.metrics[name]
        assert (ahead.baseline, ahead.yolor) == (behind.yolor, behind.baseline)
        assert ahead.delta == -behind.delta
        np.testing.assert_allclose(
            ahead.ci95, [-v for v in behind.ci95[::-1]], atol=1e-12)
        # ties (equal AP on a resample) count for neither model
        assert ahead.p_ahead + behind.p_ahead <= 1


def test_seed_makes_the_resamples_reproducible(pair_files):
    ann_file, gt, baseline, root = pair_files
    files = [
        coco_cases.write_json(results, root / f'{name}.json')
        for name, results in (('b3', baseline),
                              ('y3', coco_cases.predictions(gt, seed=10)))
    ]
    first = bootstrap_files(ann_file, *files, resamples=60, seed=4)
    again = bootstrap_files(
        ann_file, *files, resamples=60, seed=4, parallel=False)
    other = bootstrap_files(ann_file, *files, resamples=60, seed=5)
    assert first == again
    assert first.metrics['bbox_mAP'].ci95 != other.metrics['bbox_mAP'].ci95
    weights = resample_weights(7, 3, 0)
    assert weights.shape == (3, 7) and (weights.sum(axis=1) == 7).all()


def test_table_prints_points_and_intervals(pair_files):
    ann_file, _, baseline, root = pair_files
    path = coco_cases.write_json(baseline, root / 'table.json')
    table = format_bootstrap_table(
        bootstrap_files(ann_file, path, path, resamples=10, seed=2))
    lines = table.splitlines()
    assert lines[0] == ('Paired bootstrap over 60 images (10 resamples, '
                        'seed 2); AP in points.')
    assert lines[2].startswith('| metric | baseline | YOLOR | Δ |')
    assert lines[4].startswith('| bbox_mAP | ')
    assert lines[4].endswith('| +0.0 | [+0.0, +0.0] | 0.0% |')
    assert len(lines) == 4 + len(AP_STATS)


def test_no_detections_is_zero_ap(pair_files):
    ann_file, _, baseline, root = pair_files
    empty = coco_cases.write_json([], root / 'empty.json')
    result = bootstrap_files(
        ann_file,
        empty,
        coco_cases.write_json(baseline, root / 'some.json'),
        resamples=20)
    box = result.metrics['bbox_mAP']
    assert box.baseline == 0 and box.delta == box.yolor > 0
