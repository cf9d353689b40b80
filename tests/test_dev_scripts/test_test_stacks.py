# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""``make test-stacks`` (.dev_scripts/test_stacks.py): which venv a stack gets,
what pytest's closing line counts, and the table it prints."""
import argparse
import importlib.util
import os.path as osp

import pytest

TOOL = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    '.dev_scripts', 'test_stacks.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('test_stacks', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def test_stacks_get_venvs_beside_the_default_one():
    assert tool.Stack.parse(tool.DEFAULT_TORCH).venv == '.venv'
    assert tool.Stack.parse('2.1.2').venv == '.venv-torch2.1.2'
    stack = tool.Stack.parse('2.1.2:mmengine=0.10.4,mmdet=3.2.0')
    assert stack.venv == '.venv-torch2.1.2-mmengine0.10.4-mmdet3.2.0'
    env = stack.environment()
    assert (env['TORCH_VERSION'], env['VENV'], env['MMENGINE_VERSION'],
            env['MMDET_VERSION']) == ('2.1.2', stack.venv, '0.10.4', '3.2.0')


@pytest.mark.parametrize('spec', ['2.1', 'latest', '2.1.2:mmcv=2.2.0'])
def test_bad_stacks_say_the_form(spec):
    with pytest.raises(argparse.ArgumentTypeError, match='TORCH'):
        tool.Stack.parse(spec)


def test_pytest_closing_line_is_counted():
    output = ('tests/test_a.py ....\n'
              '=== 480 passed, 12 skipped, 1 failed, 3 warnings in 700.12s '
              '(0:11:40) ===\n')
    assert tool.pytest_summary(output) == dict(
        passed=480, skipped=12, failed=1, warning=3)
    assert tool.pytest_summary('no tests ran\n') == {}


def test_table_counts_failures_and_errors():
    row = tool.Row(
        tool.Stack.parse('2.1.2'),
        dict(
            python='3.11.7',
            torch='2.1.2',
            numpy='1.26.4',
            mmcv='2.1.0',
            mmengine='0.10.7',
            mmdet='3.3.0'),
        dict(passed=10, skipped=2, failed=1, error=2, warning=5), [], 90.0)
    header, rule, line = tool.table([row]).splitlines()
    assert line == ('| `.venv-torch2.1.2` | 3.11.7 | 2.1.2 | 1.26.4 | 2.1.0 | '
                    '0.10.7 | 3.3.0 | 10 | 2 | 3 | 1.5 min | nothing |')
    assert header.count('|') == rule.count('|') == line.count('|')
