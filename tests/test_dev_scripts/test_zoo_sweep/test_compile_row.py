# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The sweep's compile column: a config's baseline, YOLOR form and folded
form compiled and counted, and judged against the baseline."""
from conftest import zoo_config
from mmengine.hub import get_config

from mmdet_yolor.analysis.config_check.row import NOT_RUNNABLE
from yolor_dev.zoo_sweep.compile_row import (BASELINE_DOES_NOT_COMPILE,
                                             COMPILES_LIKE_BASELINE, WORSE,
                                             CompileRow, compile_config, judge)


def test_retinanet_compiles_like_its_baseline(settings):
    folder, name = 'retinanet', 'retinanet_r18_fpn_1x_coco.py'
    row = compile_config(zoo_config(folder, name), folder, name, settings)
    assert row.status == COMPILES_LIKE_BASELINE, row.reason
    assert row.mode == 'tensor'
    assert list(row.counts) == ['baseline', 'YOLOR', 'folded']
    baseline = row.counts_of('baseline')
    assert baseline[0] >= 1  # dynamo compiled the forward
    # identity implicits on the baseline's weights: the same frames, and
    # YOLOR's code adds no graph break
    assert row.counts_of('YOLOR') == row.counts_of('folded') == baseline
    assert max(row.max_error.values()) <= 1e-4


def test_tracker_is_not_runnable(settings):
    folder = 'sort'
    name = ('sort_faster-rcnn_r50_fpn_8xb2-4e_mot17halftrain_test-'
            'mot17halfval.py')
    row = compile_config(
        get_config(f'mmdet::{folder}/{name}'), folder, name, settings)
    assert row.status == NOT_RUNNABLE and row.counts == {}


def counted(yolor, folded, error=0.0):
    row = CompileRow(
        'x',
        'x.py',
        counts=dict(baseline=[4, 1, 0], YOLOR=yolor, folded=folded),
        max_error=dict(baseline=0.0, YOLOR=error, folded=0.0))
    judge(row)
    return row


def test_judge_compares_each_yolor_form_with_the_baseline():
    assert counted([4, 1, 0], [3, 0, 0]).status == COMPILES_LIKE_BASELINE
    worse = counted([6, 3, 0], [4, 1, 1])
    assert worse.status == WORSE
    assert worse.reason == ('YOLOR: frames 6 > 4, graph breaks 3 > 1; '
                            'folded: recompiles 1 > 0')
    mismatch = counted([4, 1, 0], [4, 1, 0], error=0.5)
    assert mismatch.status == WORSE
    assert 'YOLOR: compiled outputs differ from eager ones by 5.0e-01' == \
        mismatch.reason
    assert BASELINE_DOES_NOT_COMPILE not in (worse.status, mismatch.status)
