# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config

from mmdet_yolor import yolorize
from mmdet_yolor.demo import DEMO_CONFIGS, DemoSettings, run_config
from mmdet_yolor.package_data import CONFIGS_ROOT
from mmdet_yolor.stack_api import tree_leaves


def test_yolor_demo_configs_equal_yolorized_baselines():
    for baseline, yolor in DEMO_CONFIGS.values():
        expected = yolorize(Config.fromfile(f'{CONFIGS_ROOT}/demo/{baseline}'))
        shipped = Config.fromfile(f'{CONFIGS_ROOT}/demo/{yolor}')
        assert shipped.to_dict() == expected.to_dict()


def test_shorter_schedule_validates_every_epoch():
    baseline, _ = DEMO_CONFIGS['fcos']
    cfg = run_config(f'{CONFIGS_ROOT}/demo/{baseline}', DemoSettings(epochs=3))
    assert cfg.train_cfg.max_epochs == 3
    assert cfg.train_cfg.val_interval == 1


# slow: data, two trainings, evaluation, plots; `make demo` end to end,
# then again, keeping the finished trainings
@pytest.mark.slow
def test_short_demo_end_to_end(run_tool, tmp_path):
    args = ('demo.py', '--detectors', 'fcos', '--epochs', '1',
            '--num-train', '4', '--num-val', '4', '--data-root',
            str(tmp_path / 'data'), '--work-dir', str(tmp_path / 'demo'),
            '--cfg-options', 'model.test_cfg.score_thr=0.0')
    result = run_tool(*args, cwd=tmp_path)
    out = result.stdout
    assert '[demo] data: ' in out and 'ETA' in out
    table = (tmp_path / 'demo' / 'results.md').read_text()
    assert out.rstrip().endswith(table.rstrip())
    lines = table.splitlines()
    assert lines[2].startswith('| **FCOS** |  | 1 | ')
    assert lines[3].startswith('| **FCOS** | :heavy_check_mark: | 1 | ')
    assert lines[4].startswith('| Δ |')
    # the evaluation kept its predictions: an interval over the images
    assert lines[5].startswith('| 95 % CI, images, seed 0 |  |  | [')
    assert lines[7].startswith(
        '- **FCOS**: training noise unmeasured with 1 seed (Δ box AP ')
    assert lines[7].endswith('measure it: make demo DEMO_ARGS="--seeds 0 1 '
                             '2".')
    results = json.loads((tmp_path / 'demo' / 'results.json').read_text())
    assert results[0]['detector'] == 'FCOS'
    assert set(results[0]['image_intervals']) == {'0'}
    for picture in ('forest.png', 'curves.png', 'predictions.png',
                    'implicit_fcos.png'):
        assert (tmp_path / 'demo' / picture).stat().st_size > 0
    assert 'neck.implicit_alignment.0' in (tmp_path / 'demo' /
                                           'implicit_fcos.txt').read_text()
    again = run_tool(*args, cwd=tmp_path).stdout
    assert '(2 finished before: kept)' in again
    assert (tmp_path / 'demo' / 'results.md').read_text() == table


@pytest.mark.parametrize(
    'config', [name for pair in DEMO_CONFIGS.values() for name in pair])
def test_every_demo_config_trains_a_step(config):
    cfg = Config.fromfile(f'{CONFIGS_ROOT}/demo/{config}')
    model = MODELS.build(cfg.model)
    model.init_weights()
    packed = demo_mm_inputs(
        2,
        image_shapes=[(3, 96, 96)] * 2,
        num_items=[2, 1],
        num_classes=6,
        with_mask=True)
    data = model.data_preprocessor(packed, True)
    losses = model(**data, mode='loss')
    total = sum(tree_leaves(losses))
    assert torch.isfinite(total)
    total.backward()
