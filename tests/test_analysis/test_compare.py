# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json

import pytest

from mmdet_yolor.analysis.compare import compare, dump_json, format_table
from mmdet_yolor.analysis.work_dirs import WorkDirError

from crafted_work_dirs import (FASTER_RCNN, FASTER_RCNN_YOLOR, make_work_dir,
                               one_run, train_records, val_record)

MASK_RCNN = dict(type='MaskRCNN', roi_head=dict(type='StandardRoIHead'))
MASK_RCNN_YOLOR = dict(
    type='MaskRCNN',
    roi_head=dict(
        type='StandardRoIHead',
        bbox_head=dict(type='YOLORHead', head=dict(type='Shared2FCBBoxHead'))))
ATSS = dict(type='ATSS')
FASTER = 'faster-rcnn_r50_fpn_1x_coco'
MASK = 'mask-rcnn_r50_fpn_1x_coco'

EXPECTED_TABLE = '''\
| Model | YOLOR | seeds | AP<sup>box</sup> | AP<sub>50</sub><sup>box</sup> | AP<sub>75</sub><sup>box</sup> | AP<sup>mask</sup> | AP<sub>50</sub><sup>mask</sup> | AP<sub>75</sub><sup>mask</sup> |
| :-- | :-: | :-: | :-: | :-: | :-: | :-: | :-: | :-: |
| **Faster R-CNN** |  | 2 | 37.5 ± 0.1% | **58.1 ± 0.1%** | **40.4 ± 0.0%** | - | - | - |
| **Faster R-CNN** | :heavy_check_mark: | 1 | **37.7%** | **58.1%** | 40.2% | - | - | - |
| Δ |  |  | +0.2 | +0.0 | -0.2 | - | - | - |
|  |  |  |  |  |  |  |  |  |
| **Mask R-CNN** |  | 1 | 38.2% | 58.8% | 41.4% | **34.7%** | 55.7% | **37.2%** |
| **Mask R-CNN** | :heavy_check_mark: | 2 | **38.4 ± 0.1%** | **59.0 ± 0.1%** | **42.0 ± 0.1%** | **34.7 ± 0.1%** | **55.9 ± 0.1%** | 37.1 ± 0.0% |
| Δ |  |  | +0.2 | +0.2 | +0.6 | +0.0 | +0.2 | -0.1 |
|  |  |  |  |  |  |  |  |  |
| **ATSS** |  | 1 | 39.4% | 57.6% | 42.8% | - | - | - |'''  # noqa: E501


@pytest.fixture
def seed_work_dirs(tmp_path):
    """Work dirs of a small seed-table study, in the order they are passed:
    Faster R-CNN with two baseline seeds and a shipped YOLOR config, Mask
    R-CNN with a baseline and two seeds of ``train.py --yolor`` (same config
    name), and a lone ATSS baseline."""
    return [
        make_work_dir(tmp_path, 'faster_1', FASTER_RCNN,
                      one_run((0.374, 0.580, 0.404)), FASTER),
        make_work_dir(tmp_path, 'mask_yolor_1', MASK_RCNN_YOLOR,
                      one_run((0.383, 0.591, 0.419), (0.346, 0.558, 0.371)),
                      MASK),
        make_work_dir(tmp_path, 'faster_yolor', FASTER_RCNN_YOLOR,
                      one_run((0.377, 0.581, 0.402)),
                      'faster-rcnn-yolor_r50_fpn_1x_coco'),
        make_work_dir(tmp_path, 'mask', MASK_RCNN,
                      one_run((0.382, 0.588, 0.414), (0.347, 0.557, 0.372)),
                      MASK),
        make_work_dir(tmp_path, 'faster_2', FASTER_RCNN,
                      one_run((0.376, 0.582, 0.404)), FASTER),
        make_work_dir(tmp_path, 'mask_yolor_2', MASK_RCNN_YOLOR,
                      one_run((0.385, 0.589, 0.421), (0.348, 0.560, 0.371)),
                      MASK),
        make_work_dir(tmp_path, 'atss', ATSS, one_run((0.394, 0.576, 0.428)),
                      'atss_r50_fpn_1x_coco'),
    ]


def test_table(seed_work_dirs):
    assert format_table(compare(seed_work_dirs)) == EXPECTED_TABLE


def test_structured_results(seed_work_dirs):
    faster, mask, atss = compare(seed_work_dirs)
    assert (faster.detector, faster.experiment) == ('Faster R-CNN', FASTER)
    assert faster.baseline.seeds == 2
    assert faster.baseline.work_dirs == [seed_work_dirs[0], seed_work_dirs[4]]
    box = faster.baseline.metrics['bbox_mAP']
    assert box.values == [0.374, 0.376]
    assert box.mean == pytest.approx(0.375)
    assert box.std == pytest.approx(0.002 / 2**0.5)  # sample std, ddof=1
    assert faster.yolor.metrics['bbox_mAP'].std is None
    assert 'segm_mAP' not in faster.yolor.metrics
    assert faster.delta['bbox_mAP'] == 0.2
    assert faster.delta['segm_mAP'] is None
    assert mask.yolor.yolor and not mask.baseline.yolor
    assert mask.delta['segm_mAP_75'] == -0.1
    assert atss.yolor is None and atss.delta is None


def test_json(seed_work_dirs, tmp_path):
    path = str(tmp_path / 'compare.json')
    dump_json(compare(seed_work_dirs), path)
    with open(path) as file:
        results = json.load(file)
    assert [r['detector'] for r in results] == \
        ['Faster R-CNN', 'Mask R-CNN', 'ATSS']
    assert results[1]['yolor']['metrics']['segm_mAP']['values'] == \
        [0.346, 0.348]
    assert results[1]['delta']['bbox_mAP_75'] == 0.6
    assert results[2]['yolor'] is None


def test_resumed_run_reports_the_later_runs_metrics(tmp_path):
    first = train_records(1, 4) + [val_record(1, (0.30, 0.5, 0.3))]
    second = train_records(5, 8) + [val_record(2, (0.35, 0.55, 0.36))]
    path = make_work_dir(tmp_path, 'resumed', FASTER_RCNN,
                         [('20240101_000000', first),
                          ('20240101_093000', second)])
    comparison, = compare([path])
    assert comparison.baseline.metrics['bbox_mAP'].values == [0.35]
    assert '| **Faster R-CNN** |  | 1 | 35.0% | 55.0% | 36.0% |' in \
        format_table([comparison])


def test_work_dir_without_metrics(tmp_path):
    done = make_work_dir(tmp_path, 'done', FASTER_RCNN, one_run((.4, .6, .4)))
    untested = make_work_dir(tmp_path, 'untested', FASTER_RCNN_YOLOR,
                             [('20240101_000000', train_records(1, 4))])
    with pytest.raises(WorkDirError) as error:
        compare([done, untested])
    assert str(error.value).startswith(f'{untested} has no validation metrics')


def test_seeds_must_report_the_same_metrics(tmp_path):
    paths = [
        make_work_dir(tmp_path, 'a', MASK_RCNN,
                      one_run((.4, .6, .4), (.3, .5, .3)), MASK),
        make_work_dir(tmp_path, 'b', MASK_RCNN, one_run((.4, .6, .4)), MASK)
    ]
    with pytest.raises(WorkDirError, match=f'{paths[1]} lack segm_mAP'):
        compare(paths)


def test_detector_in_two_experiments_names_them(tmp_path):
    sparse = dict(type='SparseRCNN')
    paths = [
        make_work_dir(tmp_path, name, sparse, one_run((.4, .6, .4)), config)
        for name, config in (('1x', 'sparse-rcnn_r50_fpn_1x_coco'),
                             ('3x', 'sparse-rcnn_r50_fpn_3x_coco'))
    ]
    rows = format_table(compare(paths)).splitlines()
    assert rows[2].startswith(
        '| **Sparse R-CNN** (sparse-rcnn_r50_fpn_1x_coco) |  | 1 |')
    assert rows[4].startswith(
        '| **Sparse R-CNN** (sparse-rcnn_r50_fpn_3x_coco) |  | 1 |')
