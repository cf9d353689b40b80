# Copyright (c) mmdet_yolor contributors. All rights reserved.
import processes
import pytest

from mmdet_yolor.testing import tiny_fcos_config


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
