# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json
import os.path as osp

import coco_cases
import numpy as np
import pytest
from coco_cases import quiet, reference_stats
from pycocotools.coco import COCO

from mmdet_yolor.analysis.image_bootstrap import (bootstrap_files,
                                                  format_bootstrap_table,
                                                  resample_weights)
from mmdet_yolor.analysis.weighted_coco_ap import AP_STATS, MMDET_MAX_DETS
from mmdet_yolor.datasets import generate_dataset


@pytest.fixture(scope='module')
def shapes_val(tmp_path_factory):
    """The embedded dataset's validation annotations (40 images)."""
    root = str(tmp_path_factory.mktemp('shapes'))
    generate_dataset(root, num_train=1, num_val=40)
    ann_file = osp.join(root, 'annotations', 'instances_val.json')
    with open(ann_file, encoding='utf-8') as file:
        return ann_file, json.load(file)


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
