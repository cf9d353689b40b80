# Copyright (c) mmdet_yolor contributors. All rights reserved.
import processes
import pytest
from mmdet.utils import register_all_modules
from mmengine.hub import get_config

# Importing the plugin registers its modules in mmdet's registries, as
# `custom_imports` does for a config.
import mmdet_yolor  # noqa: F401
from mmdet_yolor.analysis.config_check import (SweepSettings, check_config,
                                               sweep_config)

# tests/ is on sys.path (pytest inserts the directory of this rootdir
# conftest), so tests import their shared fixtures and helpers by name
# (crafted_work_dirs, yolor_testing).
from yolor_testing import shrink_zoo_config, tiny_fcos_config

# As a Runner does: mmdet's modules with 'mmdet' as the default scope, so
# detectors built outside a Runner find their nested modules.
register_all_modules()


@pytest.fixture
def run_tool():
    """``run_tool(name, *args, cwd, env=None, check=True)``
    (:func:`processes.run_tool`)."""
    return processes.run_tool


@pytest.fixture
def tiny_config(tmp_path):
    """Write a seconds-long FCOS config to tmp_path and return a function
    that writes variants: ``make(name='tiny.py', **tiny_fcos_config
    kwargs) -> path``."""

    def make(name='tiny.py', **kwargs):
        cfg = tiny_fcos_config(
            str(tmp_path / 'data'), str(tmp_path / 'work'), **kwargs)
        path = str(tmp_path / name)
        cfg.dump(path)
        return path

    return make


# What the tests of the per-config check and of the zoo sweep share:
# settings that make a shrunk zoo config run in seconds, and one config
# (RetinaNet) checked once.


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
