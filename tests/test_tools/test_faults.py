# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""A training killed mid-epoch resumes to the weights of an uninterrupted
run; seeded runs repeat exactly; 2 CPU processes train as 1 with the same
total batch."""
import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.config import Config

from mmdet_yolor.compat.resume import load_from_local
from mmdet_yolor.stack_api import tree_leaves

TRAIN = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', 'tools',
    'train.py')

SEEDED = [
    '--cfg-options', 'randomness.seed=3', 'randomness.deterministic=True'
]


def weights(path):
    return load_from_local(str(path))['state_dict']


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def losses(work_dir):
    """The training losses logged in every run of a work dir."""
    values = []
    for scalars in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record:
                values.append(record['loss'])
    return values


# slow: three trainings; only check that a mid-epoch kill resumes exactly
@pytest.mark.slow
def test_killed_mid_epoch_resumes_to_the_same_weights(tiny_config, run_tool,
                                                      tmp_path):
    # random flips in the pipeline: the resumed run must draw the same ones
    config = tiny_config(max_epochs=3, num_train=16, image_size=96, flip=True)
    run_tool(
        'train.py',
        config,
        *SEEDED,
        '--work-dir',
        str(tmp_path / 'whole'),
        cwd=tmp_path)

    work = tmp_path / 'work'
    process = subprocess.Popen([sys.executable, TRAIN, config, *SEEDED],
                               cwd=tmp_path,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               text=True,
                               env=dict(
                                   os.environ,
                                   OMP_NUM_THREADS='1',
                                   PYTHONUNBUFFERED='1'))
    for line in process.stdout:
        if 'Epoch(train) [2][2/8]' in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert (work / 'epoch_1.pth').is_file()
    assert not (work / 'epoch_2.pth').exists()  # it died inside epoch 2

    resumed = run_tool('train.py', config, *SEEDED, '--resume', cwd=tmp_path)
    assert 'resumed epoch: 1, iter: 8' in resumed.stdout + resumed.stderr
    assert_same_weights(
        weights(tmp_path / 'whole' / 'epoch_3.pth'),
        weights(work / 'epoch_3.pth'))


def test_seeded_deterministic_runs_repeat(tiny_config, run_tool, tmp_path):
    config = tiny_config(max_epochs=2, flip=True)
    for name in ('a', 'b'):
        run_tool(
            'train.py',
            config,
            *SEEDED,
            '--work-dir',
            str(tmp_path / name),
            cwd=tmp_path)
    curve = losses(tmp_path / 'a')
    assert len(curve) == 8
    assert curve == losses(tmp_path / 'b')


def final_loss(config, checkpoint):
    """Loss of a trained model on the whole (8-image) training set."""
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    model.load_state_dict(weights(checkpoint))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = model.data_preprocessor(
        dict(
            inputs=[dataset[i]['inputs'] for i in range(len(dataset))],
            data_samples=[
                dataset[i]['data_samples'] for i in range(len(dataset))
            ]), True)
    with torch.no_grad():
        return sum(tree_leaves(model(**batch, mode='loss'))).item()


# Two processes sum their gradients in another order than one process:
# the final losses agree to float rounding, amplified over the steps.
DISTRIBUTED_TOLERANCE = 1e-3


# slow: 1- and 2-process trainings; the only check that CPU DDP trains as 1
@pytest.mark.slow
def test_two_cpu_processes_train_as_one(tiny_config, run_tool, tmp_path):
    # GN instead of BN: per-process batch statistics would differ
    single = tiny_config('single.py', max_epochs=2, batch_size=4, norm='GN')
    double = tiny_config('double.py', max_epochs=2, batch_size=2, norm='GN')
    run_tool(
        'train.py',
        single,
        *SEEDED,
        '--work-dir',
        str(tmp_path / 'one'),
        cwd=tmp_path)
    run_tool(
        'dist_train.sh',
        double,
        '2',
        *SEEDED,
        '--work-dir',
        str(tmp_path / 'two'),
        cwd=tmp_path)
    one = final_loss(single, tmp_path / 'one' / 'epoch_2.pth')
    two = final_loss(double, tmp_path / 'two' / 'epoch_2.pth')
    assert abs(one - two) <= DISTRIBUTED_TOLERANCE * abs(one)
