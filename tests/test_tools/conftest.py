# Copyright (c) mmdet_yolor contributors. All rights reserved.
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest

from mmdet_yolor.testing import tiny_fcos_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')


def run(args, cwd, env=None, check=True):
    """Run a command with one thread per process (the 2-core CI machine)
    and return the completed process with its output."""
    env = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed:\n{result.stdout}\n'
                             f'{result.stderr}')
    return result


def free_port() -> str:
    """A TCP port nothing listens on now, for a torchrun rendezvous: tests
    that start process groups run side by side (pytest-xdist)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return str(probe.getsockname()[1])


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
