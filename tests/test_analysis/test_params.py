# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
from mmdet.registry import MODELS

from mmdet_yolor.analysis.params import ParamCount, count_params, format_table
from mmdet_yolor.package_data import SEED_CONFIGS, get_config


def test_count_params_of_a_wrapped_neck():
    neck = MODELS.build(
        dict(
            type='YOLORNeck',
            neck=dict(
                type='FPN', in_channels=[4, 8], out_channels=8, num_outs=2)))
    count = count_params('neck', neck)
    assert count.implicit == 2 * 8
    assert count.total == sum(p.numel() for p in neck.parameters())


@pytest.mark.parametrize('baseline,yolor', SEED_CONFIGS)
def test_seed_detectors_share_is_below_a_thousandth(baseline, yolor):
    model = MODELS.build(get_config(yolor).model)
    count = count_params(yolor, model)
    plain = count_params(baseline, MODELS.build(get_config(baseline).model))
    assert count.total - plain.total == count.implicit
    assert plain.implicit == 0
    assert 0 < count.share < 0.001


def test_format_table():
    table = format_table([ParamCount('fcos-yolor', 2_000_000, 500)])
    assert table.splitlines()[-1] == \
        '| fcos-yolor | 2,000,000 | 500 | 0.0250% |'
