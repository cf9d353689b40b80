# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json

import pytest
import torch
from mmdet.registry import MODELS

from mmdet_yolor import yolorize
from mmdet_yolor.package_data import get_config

from crafted_work_dirs import make_work_dir, one_run, train_records
from yolor_testing import shrink_backbone

ATSS = dict(type='ATSS', neck=dict(type='FPN'))
ATSS_YOLOR = dict(type='ATSS', neck=dict(type='YOLORNeck', neck=ATSS['neck']))


def atss_work_dir(root, name, model, box_map=None):
    """A two-epoch ATSS run whose last validation has box mAP ``box_map``
    (no validation if None)."""
    runs = one_run((box_map, 0.6,
                    0.4)) if box_map is not None else [('20240101_000000',
                                                        train_records(1, 8))]
    return make_work_dir(
        root, name, model, runs, config_name='atss_r50_fpn_1x_coco')


def test_compare(run_tool, tmp_path):
    base = atss_work_dir(tmp_path, 'base', ATSS, 0.394)
    yolor = atss_work_dir(tmp_path, 'yolor', ATSS_YOLOR, 0.396)
    result = run_tool(
        'analysis/compare.py', base, yolor, '--json', 'out.json', cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[2:6] == [
        '| **ATSS** |  | 1 | 39.4% | **60.0%** | **40.0%** | - | - | - |',
        '| **ATSS** | :heavy_check_mark: | 1 | **39.6%** | **60.0%** | '
        '**40.0%** | - | - | - |',
        '| Δ |  |  | +0.2 | +0.0 | +0.0 | - | - | - |',
        '',
    ]
    assert lines[6].startswith(
        '- **ATSS**: training noise unmeasured with 1 seed (Δ box AP +0.2); ')
    assert lines[7] == ('  - paired in the order given: the configs set no '
                        'randomness.seed')
    assert lines[8] == ('  - seed #1: no image interval: the two runs do not '
                        'validate with a CocoMetric on the same annotation '
                        'file')
    results = json.loads((tmp_path / 'out.json').read_text())
    assert results[0]['delta']['bbox_mAP'] == 0.2
    assert results[0]['seed_deltas']['bbox_mAP']['deltas'] == [
        pytest.approx(0.002)
    ]


def test_compare_seed_interval_needs_two_seeds(run_tool, tmp_path):
    base = atss_work_dir(tmp_path, 'base', ATSS, 0.394)
    yolor = atss_work_dir(tmp_path, 'yolor', ATSS_YOLOR, 0.396)
    result = run_tool(
        'analysis/compare.py',
        base,
        yolor,
        '--seed-interval',
        '--json',
        'out.json',
        cwd=tmp_path,
        check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        'error: ATSS (atss_r50_fpn_1x_coco): a seed interval needs at least 2 '
        'seeds of each variant, got 1; train more seeds (randomness.seed) and '
        'pass every work dir')
    assert not (tmp_path / 'out.json').exists()


def test_compare_without_metrics_fails_with_a_message(run_tool, tmp_path):
    untested = atss_work_dir(tmp_path, 'untested', ATSS)
    result = run_tool(
        'analysis/compare.py', untested, cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert f'compare: {untested} has no validation metrics' in result.stderr
    assert 'Traceback' not in result.stderr


def test_plot_curves(run_tool, tmp_path):
    base = atss_work_dir(tmp_path, 'base', ATSS, 0.394)
    yolor = atss_work_dir(tmp_path, 'yolor', ATSS_YOLOR)
    run_tool(
        'analysis/plot.py',
        'curves',
        base,
        yolor,
        '--out',
        'curves.png',
        cwd=tmp_path)
    assert (tmp_path / 'curves.png').stat().st_size > 0


def test_plot_implicit(run_tool, tmp_path):
    cfg = yolorize(get_config('atss/atss_r50_fpn_1x_coco.py'))
    cfg.model = shrink_backbone(cfg.model)
    cfg.dump(str(tmp_path / 'atss-yolor.py'))
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()},
               tmp_path / 'epoch_1.pth')
    result = run_tool(
        'analysis/plot.py',
        'implicit',
        'atss-yolor.py',
        'epoch_1.pth',
        '--init',
        'epoch_1.pth',
        '--out',
        'implicit.png',
        cwd=tmp_path)
    assert '| neck.implicit_alignment.0 | add | 256 |' in result.stdout
    assert result.stdout.rstrip().endswith('saved implicit.png')
    assert (tmp_path / 'implicit.png').stat().st_size > 0
