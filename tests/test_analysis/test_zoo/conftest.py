# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the tests of the zoo sweep share: settings that make a shrunk zoo
config run in seconds, and one config (RetinaNet) checked once."""
import pytest
from mmengine.hub import get_config

from mmdet_yolor.analysis.zoo import SweepSettings, check_config, sweep_config
from mmdet_yolor.testing import shrink_zoo_config


@pytest.fixture(scope='session')
def settings():
    return SweepSettings(image_size=192, steps=2, objects=4)


def zoo_config(folder, name):
    return shrink_zoo_config(get_config(f'mmdet::{folder}/{name}'))


@pytest.fixture(scope='session')
def sweep(settings):
    """``sweep(folder, name)``: the row of a config of mmdet's zoo, shrunk
    (:func:`shrink_zoo_config`)."""

    def sweep(folder, name):
        return sweep_config(zoo_config(folder, name), folder, name, settings)

    return sweep


@pytest.fixture(scope='session')
def retinanet_check(settings):
    folder, name = 'retinanet', 'retinanet_r18_fpn_1x_coco.py'
    return check_config(zoo_config(folder, name), folder, name, settings)


@pytest.fixture(scope='session')
def retinanet_row(retinanet_check):
    return retinanet_check.row
