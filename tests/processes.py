# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Running the tools as a user would, for the tool tests (the run_tool
fixture in conftest.py; module-scoped fixtures call it directly)."""
import os
import os.path as osp
import socket
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools')
DEV_SCRIPTS = '.dev_scripts/'


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


def run_tool(name, *args, cwd, env=None, **kwargs):
    """Run ``tools/<name>``, or the development script ``name`` when it is
    a path in ``.dev_scripts/``: a .py with this interpreter, a .sh with bash,
    PYTHON set to this interpreter and PORT and MASTER_PORT (torchrun's and
    Slurm tasks' rendezvous) to free ports, unless ``env`` sets them."""
    path = osp.join(REPO if name.startswith(DEV_SCRIPTS) else TOOLS, name)
    if name.endswith('.sh'):
        return run(
            ['bash', path, *args],
            cwd,
            env={
                'PYTHON': sys.executable,
                'PORT': free_port(),
                'MASTER_PORT': free_port(),
                **(env or {})
            },
            **kwargs)
    return run([sys.executable, path, *args], cwd, env=env, **kwargs)
