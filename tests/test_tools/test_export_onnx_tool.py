# Copyright (c) mmdet_yolor contributors. All rights reserved.
import os.path as osp

import torch
from mmdet.registry import MODELS

from mmdet_yolor.deploy.sparse_rcnn_onnx import MMDEPLOY_FAILURE
from mmdet_yolor.package_data import get_config

from yolor_testing import randomise_implicits, spread_sparse_rcnn

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs/demo/fcos-yolor_r18_fpn_6e_shapes.py')


def test_export_folds_checks_and_compares_with_the_baseline(
        run_tool, tmp_path):
    torch.manual_seed(0)
    model = MODELS.build(
        get_config('demo/fcos-yolor_r18_fpn_6e_shapes.py').model)
    model.init_weights()
    randomise_implicits(model)
    checkpoint = str(tmp_path / 'yolor.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    work_dir = tmp_path / 'export'
    result = run_tool(
        'deploy/export_onnx.py',
        CONFIG,
        checkpoint,
        '--work-dir',
        str(work_dir),
        '--compare-baseline',
        cwd=tmp_path,
        env={'PYTHONPATH': REPO})
    out = result.stdout
    assert 'folded 3 of 35 implicit layers' in out
    for name in ('end2end.onnx', 'deploy_config.py', 'model_config.py',
                 'deploy.json', 'pipeline.json', 'detail.json'):
        assert (work_dir / name).is_file(), name
    checks = [line for line in out.splitlines() if line.startswith('image ')]
    assert len(checks) == 3 and all(line.endswith('[ok]') for line in checks)
    assert 'extra ops: Add +17, Mul +15; kept implicit layers leave 17 Add, ' \
        '15 Mul [ok]' in out


def test_sparse_rcnn_is_exported_with_torch_onnx(run_tool, tmp_path):
    config = 'demo/sparse-rcnn-yolor_r18_fpn_6e_shapes.py'
    torch.manual_seed(0)
    model = MODELS.build(get_config(config).model)
    model.init_weights()
    spread_sparse_rcnn(model)
    randomise_implicits(model)
    checkpoint = str(tmp_path / 'yolor.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    work_dir = tmp_path / 'export'
    result = run_tool(
        'deploy/export_onnx.py',
        osp.join(REPO, 'configs', config),
        checkpoint,
        '--work-dir',
        str(work_dir),
        cwd=tmp_path,
        env={'PYTHONPATH': REPO})
    lines = result.stdout.splitlines()
    assert 'folded 28 of 28 implicit layers' in lines
    assert [line for line in lines if 'torch.onnx directly' in line] == [
        'SparseRCNN: exported with torch.onnx directly, not mmdeploy: '
        f'{MMDEPLOY_FAILURE}'
    ]
    for name in ('end2end.onnx', 'deploy_config.py', 'model_config.py'):
        assert (work_dir / name).is_file(), name
    assert not (work_dir / 'deploy.json').exists()
    checks = [line for line in lines if line.startswith('image ')]
    assert len(checks) == 3 and all(line.endswith('[ok]') for line in checks)
