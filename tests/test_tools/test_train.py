# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy
import json
import math
import re

import pytest
import torch
from mmdet.registry import MODELS

from mmdet_yolor import yolorize
from mmdet_yolor.compat.resume import load_from_local
from mmdet_yolor.datasets import CLASSES

from yolor_testing import randomise_implicits, tiny_fcos_config


def train_iterations(log):
    """The (epoch, iteration) pairs a training log reports."""
    return [(int(e), int(i))
            for e, i in re.findall(r'Epoch\(train\) \[(\d+)\]\[\s*(\d+)/', log)
            ]


def test_train_one_epoch_then_resume_into_epoch_two(tiny_config, run_tool,
                                                    tmp_path):
    first = run_tool('train.py', tiny_config(max_epochs=1), cwd=tmp_path)
    assert train_iterations(first.stdout + first.stderr)[-1] == (1, 4)
    # the run's log says once which stack fixes the process applied, and why
    fixes = re.findall(r'mmdet_yolor applied stack fixes: .*',
                       first.stdout + first.stderr)
    assert len(fixes) == 1
    assert 'atomic_checkpoints (mmengine\'s local backend writes' in fixes[0]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()

    resumed = run_tool(
        'train.py', tiny_config(max_epochs=2), '--resume', cwd=tmp_path)
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 1, iter: 4' in log
    # epoch 1 is not trained again
    assert train_iterations(log) == [(2, 1), (2, 2), (2, 3), (2, 4)]
    checkpoint = load_from_local(str(tmp_path / 'work' / 'epoch_2.pth'))
    assert checkpoint['meta']['epoch'] == 2
    assert checkpoint['meta']['iter'] == 8


def test_resume_from_explicit_checkpoint(tiny_config, run_tool, tmp_path):
    run_tool('train.py', tiny_config(max_epochs=1), cwd=tmp_path)
    checkpoint = str(tmp_path / 'work' / 'epoch_1.pth')
    resumed = run_tool(
        'train.py',
        tiny_config(max_epochs=2),
        '--resume',
        checkpoint,
        '--work-dir',
        str(tmp_path / 'other'),
        cwd=tmp_path)
    assert 'resumed epoch: 1, iter: 4' in resumed.stdout + resumed.stderr
    assert (tmp_path / 'other' / 'epoch_2.pth').is_file()


def test_yolor_flag_trains_the_yolor_form(tiny_config, run_tool, tmp_path):
    config = tiny_config()
    run_tool(
        'train.py',
        config,
        '--yolor',
        '--work-dir',
        str(tmp_path / 'yolor'),
        cwd=tmp_path)
    state = load_from_local(str(tmp_path / 'yolor' /
                                'epoch_1.pth'))['state_dict']
    assert 'neck.implicit_alignment.0.implicit' in state
    assert 'bbox_head.conv_cls.implicit_m.4.implicit' in state


def test_yolor_flag_default_work_dir(tiny_config, run_tool, tmp_path):
    cfg_text = open(tiny_config()).read().replace("work_dir = '",
                                                  "_unused_work_dir = '")
    config = tmp_path / 'fcos_tiny.py'
    config.write_text(cfg_text)
    run_tool('train.py', str(config), '--yolor', 'fa', cwd=tmp_path)
    state = torch.load(
        tmp_path / 'work_dirs' / 'fcos_tiny_yolor-fa' / 'epoch_1.pth',
        weights_only=False)['state_dict']
    assert 'neck.implicit_alignment.0.implicit' in state
    assert not any('implicit_m' in key for key in state)


def test_dist_train_runs_two_cpu_processes(tiny_config, run_tool, tmp_path):
    result = run_tool('dist_train.sh', tiny_config(), '2', cwd=tmp_path)
    log = result.stdout + result.stderr
    # 8 images, batch 2 per process: 2 iterations per process per epoch
    assert train_iterations(log)[-1] == (1, 2)
    assert "'backend': 'gloo'" in log or "backend='gloo'" in log
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def logged_losses(work_dir):
    """The training losses of the (only) run in an mmengine work dir."""
    scalars, = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [record['loss'] for record in records if 'loss' in record]


# slow: inductor compiles a training (~217 s); the only check of its numerics
@pytest.mark.slow
def test_compile_true_trains_the_yolor_form(tiny_config, run_tool, tmp_path):
    # stock mmengine compiles the optimizer step too, and where dynamo dies
    # in torch/optim the compat fix compiles forward and loss (inductor)
    # two epochs of the same batch: one compilation serves both steps
    config = tiny_config(num_train=2, max_epochs=2)
    seeded = ['--yolor', '--cfg-options', 'randomness.seed=0']
    run_tool(
        'train.py',
        config,
        *seeded,
        '--work-dir',
        str(tmp_path / 'eager'),
        cwd=tmp_path)
    result = run_tool(
        'train.py',
        config,
        *seeded,
        'compile=True',
        '--work-dir',
        str(tmp_path / 'compiled'),
        cwd=tmp_path)
    assert 'Model has been "compiled"' in result.stdout + result.stderr
    eager = logged_losses(tmp_path / 'eager')
    compiled = logged_losses(tmp_path / 'compiled')
    assert len(compiled) == len(eager) == 2
    assert all(math.isfinite(loss) for loss in compiled)
    # the same weights and batch: the compiled loss is the eager one
    assert compiled[0] == pytest.approx(eager[0], rel=1e-4)


def test_fine_tune_a_yolor_checkpoint_with_another_class_count(
        run_tool, tmp_path):
    # a 6-class YOLOR FCOS checkpoint warm-starts a 2-class one through the
    # Runner's load_from: what is sized by the class count (conv_cls and
    # its per-level ImplicitMs) is skipped, everything else loads
    source_cfg = yolorize(
        tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'source')))
    torch.manual_seed(0)
    source = MODELS.build(source_cfg.model)
    source.init_weights()
    randomise_implicits(source)
    checkpoint = str(tmp_path / 'six_classes.pth')
    torch.save(dict(state_dict=source.state_dict(), meta={}), checkpoint)

    cfg = copy.deepcopy(source_cfg)
    cfg.model.bbox_head.num_classes = 2
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.metainfo = dict(classes=CLASSES[:2])
    cfg.load_from = checkpoint
    cfg.work_dir = str(tmp_path / 'fine_tuned')
    cfg.optim_wrapper.optimizer.lr = 0.0  # the loaded weights stay as read
    cfg.dump(str(tmp_path / 'two_classes.py'))
    result = run_tool(
        'train.py', str(tmp_path / 'two_classes.py'), cwd=tmp_path)
    log = result.stdout + result.stderr
    skipped = {
        'bbox_head.conv_cls.weight', 'bbox_head.conv_cls.bias',
        *(f'bbox_head.conv_cls.implicit_m.{level}.implicit'
          for level in range(5))
    }
    for key in skipped:
        assert f'size mismatch for {key}' in log
    tuned = load_from_local(str(tmp_path / 'fine_tuned' /
                                'epoch_1.pth'))['state_dict']
    parameters = {name for name, _ in source.named_parameters()}
    for key in parameters - skipped:
        assert torch.equal(tuned[key], source.state_dict()[key]), key
    for key in skipped:
        assert tuned[key].shape[0] == 2  # the new class count
