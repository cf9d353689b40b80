# Copyright (c) mmdet_yolor contributors. All rights reserved.
import os.path as osp
import sys

import pytest
from processes import TOOLS, free_port, run

from mmdet_yolor.testing import tiny_fcos_config


@pytest.fixture
def run_tool():
    """``run_tool(name, *args, cwd, env=None, check=True)`` runs
    ``tools/<name>``: a .py with this interpreter, a .sh with bash, PYTHON
    set to this interpreter and PORT to a free port (unless ``env`` sets
    them)."""

    def run_tool(name, *args, cwd, env=None, **kwargs):
        path = osp.join(TOOLS, name)
        if name.endswith('.sh'):
            return run(['bash', path, *args],
                       cwd,
                       env={
                           'PYTHON': sys.executable,
                           'PORT': free_port(),
                           **(env or {})
                       },
                       **kwargs)
        return run([sys.executable, path, *args], cwd, env=env, **kwargs)

    return run_tool


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
