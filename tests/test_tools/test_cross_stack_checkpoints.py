# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Checkpoints written on another stack of the matrix resume, test and
fine-tune here: one written by ``tools/train.py`` under torch 2.1 with
numpy 1 (a cluster's checkpoint) and one under torch 2.13 with numpy 2
(tests/data/cross_stack/, made by ``python tests/cross_stack.py``). Every
stack runs them all, its own included."""
import glob
import os.path as osp
import re

import pytest
from cross_stack import FIXTURES, checkpoint_config

from mmdet_yolor.compat.resume import load_from_local

CHECKPOINTS = sorted(glob.glob(osp.join(FIXTURES, '*.pth')))


def test_fixtures_cover_numpy_1_and_2():
    numpy_majors = {
        re.search(r'_numpy-(\d+)\.', osp.basename(path)).group(1)
        for path in CHECKPOINTS
    }
    assert numpy_majors == {'1', '2'}, CHECKPOINTS


@pytest.fixture
def config(tmp_path):
    """``config(max_epochs) -> path`` of the fixtures' config, with its data
    and work dir in tmp_path."""

    def write(max_epochs=1):
        path = str(tmp_path / f'cross_stack_{max_epochs}.py')
        checkpoint_config(
            str(tmp_path / 'data'),
            str(tmp_path / 'work'),
            max_epochs=max_epochs).dump(path)
        return path

    return write


def ids(paths):
    return [osp.basename(path)[len('fcos-yolor_'):-4] for path in paths]


@pytest.mark.parametrize('checkpoint', CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_resume(checkpoint, config, run_tool, tmp_path):
    result = run_tool(
        'train.py',
        config(max_epochs=2),
        '--yolor',
        '--resume',
        checkpoint,
        cwd=tmp_path)
    assert 'resumed epoch: 1, iter: 1' in result.stdout + result.stderr
    resumed = load_from_local(str(tmp_path / 'work' / 'epoch_2.pth'))
    assert (resumed['meta']['epoch'], resumed['meta']['iter']) == (2, 2)
    # the training went on from the checkpoint's weights
    before = load_from_local(checkpoint)['state_dict']
    after = resumed['state_dict']
    assert before.keys() == after.keys()
    assert 'bbox_head.conv_cls.implicit_m.0.implicit' in after


@pytest.mark.parametrize('checkpoint', CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_test_tool(checkpoint, config, run_tool, tmp_path):
    result = run_tool('test.py', config(), checkpoint, '--yolor', cwd=tmp_path)
    assert re.search(r'coco/bbox_mAP: -?\d', result.stdout + result.stderr)


@pytest.mark.parametrize('checkpoint', CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_fine_tune_with_load_from(checkpoint, config, run_tool, tmp_path):
    result = run_tool(
        'train.py',
        config(),
        '--yolor',
        '--cfg-options',
        f'load_from={checkpoint}',
        cwd=tmp_path)
    log = result.stdout + result.stderr
    assert f'Load checkpoint from {checkpoint}' in log
    assert 'resumed' not in log
    # every key of the checkpoint's model loaded, nothing missing
    assert 'do not match exactly' not in log
    tuned = load_from_local(str(tmp_path / 'work' / 'epoch_1.pth'))
    # a new training: its own first epoch
    assert (tuned['meta']['epoch'], tuned['meta']['iter']) == (1, 1)
