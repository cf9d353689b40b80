# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest

from mmdet_yolor.analysis.work_dirs import (WorkDirError, contains_yolor,
                                            detector_name, experiment_name,
                                            find_config_name, load_work_dir,
                                            load_work_dirs, merge_runs)

from crafted_work_dirs import (FASTER_RCNN, FASTER_RCNN_YOLOR, make_work_dir,
                               one_run, train_records, val_record)


@pytest.mark.parametrize('model_type,name', [
    ('FasterRCNN', 'Faster R-CNN'),
    ('MaskRCNN', 'Mask R-CNN'),
    ('SparseRCNN', 'Sparse R-CNN'),
    ('FCOS', 'FCOS'),
    ('ATSS', 'ATSS'),
    ('RetinaNet', 'RetinaNet'),
    ('mmdet.ATSS', 'ATSS'),
    ('CascadeRCNN', 'CascadeRCNN'),
])
def test_detector_name(model_type, name):
    assert detector_name(model_type) == name


def test_experiment_name_drops_the_yolor_marker():
    assert experiment_name('faster-rcnn-yolor_r50_fpn_1x_coco') == \
        'faster-rcnn_r50_fpn_1x_coco'
    assert experiment_name('faster-rcnn_r50_fpn_1x_coco') == \
        'faster-rcnn_r50_fpn_1x_coco'


def test_contains_yolor_searches_nested_lists():
    assert not contains_yolor(FASTER_RCNN)
    assert contains_yolor(FASTER_RCNN_YOLOR)
    assert contains_yolor(
        dict(
            type='SparseRCNN',
            roi_head=dict(bbox_head=[
                dict(type='DIIHead'),
                dict(type='YOLORHead', head=dict(type='DIIHead'))
            ])))


def test_load_work_dir(tmp_path):
    runs = one_run((0.4, 0.6, 0.42))
    # mmengine logs a metric-less line when a validation found nothing
    runs[0][1].insert(4, dict(data_time=0.01, time=0.1, step=1))
    path = make_work_dir(tmp_path, 'base', FASTER_RCNN, runs)
    work_dir = load_work_dir(path)
    assert (work_dir.detector, work_dir.variant, work_dir.config_name) == \
        ('Faster R-CNN', 'baseline', 'faster-rcnn_r50')
    assert [r['step'] for r in work_dir.train_records] == list(range(1, 9))
    assert [r['step'] for r in work_dir.val_records] == [1, 2]
    assert work_dir.final_metrics() == {
        'bbox_mAP': 0.4,
        'bbox_mAP_50': 0.6,
        'bbox_mAP_75': 0.42,
        'bbox_mAP_s': 0.2,
        'bbox_mAP_m': 0.4,
        'bbox_mAP_l': 0.5
    }
    yolor = load_work_dir(
        make_work_dir(tmp_path, 'yolor', FASTER_RCNN_YOLOR, runs))
    assert yolor.variant == 'YOLOR'


def test_resumed_run_replaces_the_steps_it_repeats(tmp_path):
    first = train_records(1, 6) + [val_record(1, (0.1, 0.2, 0.1))]
    # resumed from epoch_1.pth: iterations 5-6 are trained again
    second = train_records(5, 8) + [val_record(2, (0.3, 0.5, 0.3))]
    # written newest first: runs are ordered by their timestamp names
    path = make_work_dir(tmp_path, 'resumed', FASTER_RCNN,
                         [('20240102_000000', second),
                          ('20240101_000000', first)])
    work_dir = load_work_dir(path)
    assert [r['step'] for r in work_dir.train_records] == list(range(1, 9))
    assert work_dir.train_records[5]['loss'] == second[1]['loss']
    assert work_dir.final_metrics()['bbox_mAP'] == 0.3


def test_metrics_of_the_latest_run_that_validated(tmp_path):
    first = train_records(1, 4) + [val_record(1, (0.3, 0.5, 0.3))]
    crashed = train_records(5, 6)  # resumed, stopped before validating
    work_dir = load_work_dir(
        make_work_dir(tmp_path, 'w',
                      FASTER_RCNN, [('20240101_000000', first),
                                    ('20240101_120000', crashed)]))
    assert work_dir.final_metrics()['bbox_mAP'] == 0.3
    assert len(work_dir.train_records) == 6


def test_work_dir_without_metrics(tmp_path):
    path = make_work_dir(tmp_path, 'untested', FASTER_RCNN,
                         [('20240101_000000', train_records(1, 4))])
    with pytest.raises(
            WorkDirError, match='untested has no validation metrics'):
        load_work_dir(path).final_metrics()


def test_not_a_work_dir(tmp_path):
    with pytest.raises(WorkDirError, match='is not a directory'):
        load_work_dir(str(tmp_path / 'missing'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(WorkDirError, match='has no training run'):
        load_work_dir(str(tmp_path / 'empty'))


def test_bad_scalars_line_names_file_and_line(tmp_path):
    path = make_work_dir(tmp_path, 'w', FASTER_RCNN, one_run((.4, .6, .4)))
    scalars = tmp_path / 'w' / '20240101_000000' / 'vis_data' / 'scalars.json'
    scalars.write_text('{"loss": 1, "step": 1}\n{"loss": \n')
    with pytest.raises(WorkDirError, match='scalars.json, line 2'):
        load_work_dir(path)


def test_work_dir_given_twice(tmp_path):
    path = make_work_dir(tmp_path, 'w', FASTER_RCNN, one_run((.4, .6, .4)))
    with pytest.raises(WorkDirError, match='given twice'):
        load_work_dirs([path, str(tmp_path / '.' / 'w')])


def test_config_name_of_a_work_dir_resumed_with_another_config(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'old.py').write_text('model = 1\n')
    (work_dir / 'new.py').write_text('model = 2\n')
    run_config = tmp_path / 'config.py'
    run_config.write_text('model = 2\n')
    assert find_config_name(str(work_dir), str(run_config)) == 'new'
    run_config.write_text('model = 3\n')
    with pytest.raises(WorkDirError, match='found: new.py, old.py'):
        find_config_name(str(work_dir), str(run_config))


def test_merge_runs():
    runs = [[dict(step=1), dict(step=2),
             dict(step=3)], [], [dict(step=2, x=1),
                                 dict(step=3, x=1)]]
    assert merge_runs(runs) == [
        dict(step=1), dict(step=2, x=1),
        dict(step=3, x=1)
    ]
