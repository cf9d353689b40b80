# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json
import shutil

import coco_cases
import pytest

from mmdet_yolor.analysis.compare import (compare, dump_json, format_report,
                                          format_table)
from mmdet_yolor.analysis.image_bootstrap import bootstrap_files
from mmdet_yolor.analysis.work_dirs import WorkDirError
from mmdet_yolor.errors import InputError

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


def test_unpaired_runs_get_no_verdict_but_say_why(seed_work_dirs):
    faster, mask, atss = compare(seed_work_dirs, resamples=0)
    assert faster.seed_deltas == {} and faster.image_intervals == {}
    assert faster.verdict.startswith(
        'no verdict: not paired: 2 baseline and 1 YOLOR runs, and the '
        'configs set no randomness.seed')
    assert atss.verdict is None
    lines = format_report([faster, mask, atss]).splitlines()
    assert lines[:len(EXPECTED_TABLE.splitlines())] == \
        EXPECTED_TABLE.splitlines()
    assert lines[len(EXPECTED_TABLE.splitlines()) +
                 1].startswith('- **Faster R-CNN**: no verdict: ')


def seeded_runs(tmp_path, boxes, **kwargs):
    """Baseline and YOLOR Faster R-CNN work dirs of seeds 0, 1, ...: one
    (baseline, YOLOR) box mAP pair a seed."""
    paths = []
    for seed, (baseline, yolor) in enumerate(boxes):
        for variant, model, box in (('b', FASTER_RCNN, baseline),
                                    ('y', FASTER_RCNN_YOLOR, yolor)):
            paths.append(
                make_work_dir(
                    tmp_path,
                    f'{variant}{seed}',
                    model,
                    one_run((box, 0.5, 0.4)),
                    FASTER,
                    seed=seed,
                    **kwargs))
    return paths


def test_seeds_pair_by_seed_into_an_interval_and_a_verdict(tmp_path):
    paths = seeded_runs(tmp_path, [(0.370, 0.390), (0.372, 0.385),
                                   (0.368, 0.391)])
    # the order given does not matter: seeds pair by randomness.seed
    comparison, = compare(paths[::-1], resamples=0)
    paired = comparison.seed_deltas['bbox_mAP']
    assert paired.seeds == [0, 1, 2]
    assert paired.deltas == pytest.approx([0.020, 0.013, 0.023])
    assert comparison.pairing == ''
    assert comparison.verdict.startswith(
        'YOLOR ahead: Δ box AP +1.9 (sd 0.5), 95 % CI over 3 seeds [+')
    rows = format_table([comparison]).splitlines()
    assert rows[-1].startswith('| 95 % CI, 3 seeds |  |  | [+')


def test_an_undetectable_difference_says_how_many_seeds_would_do(tmp_path):
    paths = seeded_runs(tmp_path, [(0.370, 0.380), (0.372, 0.367),
                                   (0.368, 0.381)])
    comparison, = compare(paths, resamples=0)
    assert comparison.verdict.startswith(
        'no difference detectable with 3 seeds: Δ box AP +0.6 (sd 1.0), 95 % '
        'CI over 3 seeds [-')
    needed = int(comparison.verdict.split('about ')[1].split()[0])
    assert needed > 3


def test_one_seed_says_training_noise_is_unmeasured(tmp_path):
    paths = seeded_runs(tmp_path, [(0.370, 0.380)])
    comparison, = compare(paths, resamples=0, more_seeds_hint='run X')
    assert comparison.verdict == (
        'training noise unmeasured with 1 seed (Δ box AP +1.0); seeds alone '
        'move AP by as much, so measure it: run X')
    with pytest.raises(InputError) as error:
        compare(paths, resamples=0, require_seed_interval=True)
    assert str(error.value).startswith(
        'Faster R-CNN (faster-rcnn_r50_fpn_1x_coco): a seed interval needs '
        'at least 2 seeds of each variant, got 1')


def test_seed_pairing_names_lone_and_repeated_seeds(tmp_path):
    paths = seeded_runs(tmp_path, [(0.370, 0.380), (0.372, 0.367)])
    comparison, = compare(paths[:3], resamples=0)
    assert comparison.pairing == f'unpaired (no run of the other variant ' \
        f'with their seed): {paths[2]}'
    again = make_work_dir(
        tmp_path,
        'again',
        FASTER_RCNN,
        one_run((0.371, 0.5, 0.4)),
        FASTER,
        seed=0)
    with pytest.raises(WorkDirError, match='are both baseline runs of'):
        compare(paths + [again], resamples=0)


@pytest.fixture
def kept_pair(tmp_path):
    """A baseline and a YOLOR work dir of seed 0 that kept their
    predictions on a crafted annotation file, their logged box mAP that of
    the predictions."""
    gt = coco_cases.ground_truth(num_images=40, crowd=False, seed=3)
    ann_file = coco_cases.write_json(gt, tmp_path / 'ann.json')
    third = [image['id'] for image in gt['images']][::3]
    baseline = coco_cases.predictions(gt, seed=4)
    yolor = baseline + coco_cases.true_positives(gt, third)
    paths = []
    for name, model, results in (('b', FASTER_RCNN, baseline),
                                 ('y', FASTER_RCNN_YOLOR, yolor)):
        files = tmp_path / 'kept' / name
        files.mkdir(parents=True)
        path = coco_cases.write_json(results, files / 'val.bbox.json')
        box = bootstrap_files(ann_file, path, path, resamples=1).metrics
        path = make_work_dir(
            tmp_path,
            name,
            model,
            one_run((round(box['bbox_mAP'].baseline, 3), 0.5, 0.4)),
            FASTER,
            seed=0,
            ann_file=ann_file)
        (tmp_path / name / 'predictions').mkdir()
        shutil.copy(files / 'val.bbox.json',
                    tmp_path / name / 'predictions' / 'val.bbox.json')
        paths.append(path)
    return paths


def test_kept_predictions_give_an_image_interval_per_seed(kept_pair):
    comparison, = compare(kept_pair, resamples=100)
    box = comparison.image_intervals['0']['bbox_mAP']
    assert box.ci95[0] > 0
    assert comparison.verdict.startswith(
        'training noise unmeasured with 1 seed (Δ box AP +')
    assert '; over images 95 % CI [+' in comparison.verdict
    assert '(beyond test-set sampling)' in comparison.verdict
    rows = format_table([comparison]).splitlines()
    assert rows[-1].startswith('| 95 % CI, images, seed 0 |  |  | [+')
    assert comparison.notes == []


def test_stale_predictions_are_left_out(kept_pair, tmp_path):
    shutil.copy(tmp_path / 'kept' / 'b' / 'val.bbox.json',
                tmp_path / 'y' / 'predictions' / 'val.bbox.json')
    comparison, = compare(kept_pair, resamples=20)
    assert comparison.image_intervals == {}
    assert comparison.notes[0].startswith(
        f'seed 0: no image interval: the predictions {kept_pair[1]} kept '
        f'give bbox_mAP ')
