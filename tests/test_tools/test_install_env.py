# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""``make install`` (tools/misc/install_env.sh): one clear sentence for a
missing prerequisite, a no-op when the environment is up to date, and
mmcv's ops compiled with Python's optimisation flags."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig

import pytest
import torch


@pytest.fixture
def install(run_tool, tmp_path):
    """Run the install script from tmp_path with ``env`` added; the venv
    goes to tmp_path unless VENV is given, so a failing check can never
    touch the real one."""

    def install(**env):
        return run_tool(
            'misc/install_env.sh',
            cwd=str(tmp_path),
            env={
                'VENV': str(tmp_path / 'venv'),
                **env
            },
            check=False)

    return install


def assert_refused(result, tmp_path, *phrases):
    """Exit 1 with a single ``make install: ...`` line naming the problem,
    and no venv created."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('make install: '), lines
    for phrase in phrases:
        assert phrase in lines[0]
    assert not (tmp_path / 'venv').exists()


def fake_python(tmp_path, version_line):
    """An interpreter that reports ``version_line`` for ``-V`` and fails
    every ``-c`` check, as an unsupported Python does the version check."""
    path = tmp_path / 'python'
    path.write_text(f'#!/bin/sh\n[ "$1" = -V ] && echo "{version_line}" '
                    '&& exit 0\nexit 1\n')
    path.chmod(0o755)
    return str(path)


def test_missing_python(install, tmp_path):
    result = install(PYTHON=str(tmp_path / 'no-such-python3'))
    assert_refused(result, tmp_path, 'no-such-python3', 'was not found',
                   'install Python 3.8-3.12')


def test_unsupported_python(install, tmp_path):
    result = install(PYTHON=fake_python(tmp_path, 'Python 3.7.9'))
    assert_refused(result, tmp_path, 'Python 3.7.9 is not supported',
                   'need Python 3.8-3.12')


def test_missing_cxx_compiler(install, tmp_path):
    # a PATH with only what runs the script up to the compiler check
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for tool in ('bash', 'dirname'):
        os.symlink(shutil.which(tool), bin_dir / tool)
    result = install(PATH=str(bin_dir), CXX=str(tmp_path / 'no-such-g++'))
    assert_refused(result, tmp_path, 'no C++ compiler found',
                   'apt install g++')


def test_second_install_is_a_no_op(install):
    # `make test` installs first, so the environment running these tests is
    # the one the stamp describes
    venv = sys.prefix
    assert osp.isfile(osp.join(venv, '.mmdet_yolor-install-stamp')), (
        f'{venv} was not made by `make install`; run the tests with '
        '`make test`')
    log = osp.join(venv, 'install.log')
    log_mtime = osp.getmtime(log)
    # run from elsewhere: the script finds the repo from its own path
    result = install(VENV=venv)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f'make install: {venv} is up to date.'
    assert osp.getmtime(log) == log_mtime


def test_mmcv_is_built_with_pythons_optimisation_flags():
    # setuptools' distutils uses $CFLAGS instead of Python's flags, so a
    # bare CFLAGS=-g0 once compiled the ops without -O3 and -DNDEBUG (2-3x
    # slower): the build must get Python's flags with -g0 after them
    record = osp.join(sys.prefix, '.mmcv-build')
    assert osp.isfile(record), (
        f'{record} is missing: mmcv was not built by `make install`; run the '
        'tests with `make test`')
    with open(record) as f:
        build = f.read()
    # `make test` installs in the environment it tests in: a CFLAGS of the
    # user's own replaces Python's, as intended
    cflags = os.environ.get('CFLAGS') or sysconfig.get_config_var('CFLAGS')
    assert f'cflags={cflags} -g0 ' in build, build
    assert f'torch={torch.__version__} ' in build, build
    # and the library shows it: with NDEBUG (Python's flags have it) no
    # assert() is left in it
    assert '-DNDEBUG' in cflags, f'CFLAGS={cflags!r} drop -DNDEBUG'
    import mmcv
    library, = glob.glob(osp.join(osp.dirname(mmcv.__file__), '_ext*.so'))
    undefined = subprocess.run(['nm', '-D', '--undefined-only', library],
                               capture_output=True,
                               text=True,
                               check=True).stdout
    assert '__assert_fail' not in undefined
