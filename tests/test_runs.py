# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest

from mmdet_yolor import runs
from mmdet_yolor.errors import InputError

from yolor_testing import tiny_fcos_config


@pytest.fixture
def config(tmp_path):
    cfg = tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    cfg.custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='EMAHook')]
    path = tmp_path / 'tiny.py'
    cfg.dump(str(path))
    return str(path)


def test_training_gets_the_default_hooks_once(config):
    cfg = runs.prepare_train_config(config)
    assert [h['type'] for h in cfg.custom_hooks
            ] == ['NonFiniteLossHook', 'EMAHook', 'EpochSeedHook']


def test_auto_resume_without_checkpoint_starts_afresh(config, tmp_path):
    cfg = runs.prepare_train_config(config, resume='auto')
    assert cfg.resume is False and cfg.load_from is None
    cfg = runs.prepare_train_config(config, resume='ckpt.pth')
    assert cfg.resume is True and cfg.load_from == 'ckpt.pth'


def test_work_dirs(config):
    assert runs.default_work_dir('a/b/x.py') == './work_dirs/x'
    assert runs.default_work_dir('x.py', 'all') == './work_dirs/x_yolor'
    assert runs.default_work_dir('x.py', 'fa') == './work_dirs/x_yolor-fa'
    cfg = runs.prepare_train_config(config, work_dir='elsewhere')
    assert cfg.work_dir == 'elsewhere'


def test_option_errors(config):
    with pytest.raises(InputError, match='--yolor takes one of'):
        runs.load_config(config, yolor='everything')
    with pytest.raises(
            InputError,
            match='--auto-scale-lr needs '
            'auto_scale_lr.base_batch_size in'):
        runs.prepare_train_config(
            config, auto_scale_lr=True, cfg_options={'auto_scale_lr': None})
    with pytest.raises(InputError, match='--out must name a .pkl file'):
        runs.test(runs.prepare_test_config(config, 'x.pth'), out='preds.json')


def test_exit_on_input_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        with runs.exit_on_input_error():
            raise InputError('annotation file x.json is wrong')
    assert exit_info.value.code == 1
    assert capsys.readouterr(
    ).err == 'error: annotation file x.json is wrong\n'
    with pytest.raises(AssertionError, match='unrelated'):
        with runs.exit_on_input_error():
            raise AssertionError('unrelated')


def test_training_and_testing_keep_their_coco_predictions(config, tmp_path):
    cfg = runs.prepare_train_config(config, work_dir='w')
    assert cfg.val_evaluator.outfile_prefix == 'w/predictions/val'
    cfg = runs.prepare_test_config(config, 'ckpt.pth', work_dir='t')
    assert cfg.test_evaluator.outfile_prefix == 't/predictions/test'
    cfg = runs.prepare_train_config(
        config, cfg_options={'val_evaluator.outfile_prefix': 'mine'})
    assert cfg.val_evaluator.outfile_prefix == 'mine'
