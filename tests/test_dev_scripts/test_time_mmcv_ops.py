# Copyright (c) mmdet_yolor contributors. All rights reserved.
""".dev_scripts/time_mmcv_ops.py: times mmcv's CPU ops, alone or against
another build in alternating processes."""
import os.path as osp
import re

import mmcv

OPS = ('nms', 'roi_align', 'box_iou_rotated', 'nms_rotated', 'deform_conv2d',
       'modulated_deform_conv2d', 'roi_align_rotated')


def rows(stdout):
    return {
        match[1]: match.groups()[1:]
        for match in re.finditer(
            r'^\| (\w+) \| ([\d.]+)(?: \| ([\d.]+) \| '
            r'([\d.]+)x)? \|$', stdout, re.M)
    }


def timed_rows(run_tool, cwd, *args):
    """Run the tool once per build, one repeat, and return its rows checked
    to name every op: ``{op: (ms, other ms, ratio)}``."""
    result = run_tool(
        '.dev_scripts/time_mmcv_ops.py',
        *args,
        '--repeats',
        '1',
        '--rounds',
        '1',
        cwd=str(cwd))
    timed = rows(result.stdout)
    assert set(timed) == set(OPS), result.stdout
    return timed


def test_times_every_op_of_the_installed_build(run_tool, tmp_path):
    timed = timed_rows(run_tool, tmp_path)
    assert all(
        float(ms) > 0 and other is None for ms, other, _ in timed.values())


def test_against_another_build_gives_ratios(run_tool, tmp_path):
    # the installed build against itself, found where it is installed
    installed = osp.dirname(osp.dirname(mmcv.__file__))
    timed = timed_rows(run_tool, tmp_path, '--against', installed)
    for ms, other, ratio in timed.values():
        assert abs(float(ratio) - float(ms) / float(other)) < 0.01


def test_a_directory_without_mmcv_is_refused(run_tool, tmp_path):
    result = run_tool(
        '.dev_scripts/time_mmcv_ops.py',
        '--against',
        str(tmp_path),
        cwd=str(tmp_path),
        check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'--against {tmp_path}: no mmcv/ in it; unpack a wheel there '
        f'(unzip mmcv-2.1.0-*.whl -d {tmp_path}).')
