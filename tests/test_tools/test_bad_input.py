# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Wrong inputs end the tools with one line naming the problem and the file
or key, exit status 1, and nothing half-done on disk."""
import json

import pytest
from mmengine.config import Config

from mmdet_yolor.datasets import ensure_dataset

from yolor_testing import tiny_fcos_config


@pytest.fixture
def coco_config(tmp_path):
    """A tiny config reading generated data as plain COCO, and its data."""
    data = tmp_path / 'data'
    ensure_dataset(str(data), num_train=8, num_val=4, image_size=64, seed=0)
    cfg = tiny_fcos_config(
        str(data), str(tmp_path / 'work'), dataset_type='CocoDataset')
    path = tmp_path / 'coco.py'
    cfg.dump(str(path))
    return str(path), data


def last_line(result):
    assert result.returncode == 1, result.stderr
    assert 'Traceback' not in result.stderr
    return result.stderr.strip().splitlines()[-1]


def assert_nothing_written(tmp_path):
    assert not (tmp_path / 'work').exists()
    assert not (tmp_path / 'work_dirs').exists()


def test_missing_config(run_tool, tmp_path):
    result = run_tool('train.py', 'nope.py', cwd=tmp_path, check=False)
    assert last_line(result) == 'error: config file nope.py does not exist'
    assert_nothing_written(tmp_path)


def test_missing_annotation_file(run_tool, coco_config, tmp_path):
    config, data = coco_config
    (data / 'annotations' / 'instances_train.json').unlink()
    result = run_tool('train.py', config, cwd=tmp_path, check=False)
    assert last_line(result) == (
        f'error: annotation file {data}/annotations/instances_train.json '
        'does not exist; check data_root and ann_file of the dataset config')
    assert_nothing_written(tmp_path)


def test_malformed_annotation_file(run_tool, coco_config, tmp_path):
    config, data = coco_config
    (data / 'annotations' / 'instances_val.json').write_text('{"images": ')
    result = run_tool('train.py', config, cwd=tmp_path, check=False)
    assert last_line(result).startswith(
        f'error: annotation file {data}/annotations/instances_val.json is '
        'not valid JSON: Expecting value: line 1 column 12')
    assert_nothing_written(tmp_path)


def test_box_outside_image(run_tool, coco_config, tmp_path):
    config, data = coco_config
    path = data / 'annotations' / 'instances_train.json'
    coco = json.loads(path.read_text())
    first = coco['annotations'][0]
    first['bbox'][0] = 70.0
    path.write_text(json.dumps(coco))
    result = run_tool('train.py', config, cwd=tmp_path, check=False)
    assert last_line(result).startswith(
        f'error: annotation file {path}: annotation {first["id"]} has bbox '
        f'[70.0, ')
    assert last_line(result).endswith('outside its 64x64 image 000000.png')
    assert_nothing_written(tmp_path)


def test_image_that_fails_to_decode(run_tool, coco_config, tmp_path):
    config, data = coco_config
    broken = data / 'train' / '000003.png'
    broken.write_bytes(b'not a png')
    result = run_tool('train.py', config, cwd=tmp_path, check=False)
    assert last_line(result) == (
        f'error: image {broken} could not be decoded (corrupt or not an '
        'image file); replace it or remove it from the annotation file')
    # it failed in epoch 1: no checkpoint, complete or not
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_missing_checkpoint(run_tool, tiny_config, tmp_path):
    result = run_tool(
        'test.py', tiny_config(), 'nope.pth', cwd=tmp_path, check=False)
    assert last_line(result) == 'error: checkpoint nope.pth does not exist'
    assert_nothing_written(tmp_path)


def test_corrupt_checkpoint(run_tool, tiny_config, tmp_path):
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'PK\x03\x04 truncated')
    result = run_tool(
        'test.py', tiny_config(), str(broken), cwd=tmp_path, check=False)
    assert last_line(result).startswith(
        f'error: checkpoint {broken} is not a readable checkpoint (truncated '
        'or corrupt): use another one')
    # one line, without torch's text (which suggests weights_only=False)
    assert 'weights_only' not in result.stderr
    assert_nothing_written(tmp_path)


def test_checkpoint_of_another_architecture(run_tool, tiny_config, tmp_path):
    config = tiny_config()
    run_tool(
        'train.py',
        config,
        '--work-dir',
        str(tmp_path / 'trained'),
        cwd=tmp_path)
    checkpoint = str(tmp_path / 'trained' / 'epoch_1.pth')
    # the YOLOR form of the model: the checkpoint lacks its implicits
    result = run_tool(
        'test.py', config, checkpoint, '--yolor', cwd=tmp_path, check=False)
    assert last_line(result).startswith(
        f'error: checkpoint {checkpoint} does not fit the model of ')
    assert last_line(result).endswith(
        'It has no implicit parameters: was it trained without YOLOR? Use '
        'the baseline config.')
    # a wider head
    other = Config.fromfile(config)
    other.model.bbox_head.feat_channels = 64
    other.dump(str(tmp_path / 'wide.py'))
    result = run_tool(
        'train.py',
        str(tmp_path / 'wide.py'),
        '--resume',
        checkpoint,
        cwd=tmp_path,
        check=False)
    assert ' of another shape (e.g. bbox_head.cls_convs.0.conv.weight: ' in \
        last_line(result)
    assert_nothing_written(tmp_path)


def test_yolorize_without_neck_or_backbone(run_tool, tmp_path):
    config = tmp_path / 'headless.py'
    config.write_text("model = dict(type='SingleStageDetector', "
                      "bbox_head=dict(type='FCOSHead', num_classes=3))\n")
    result = run_tool(
        'train.py', str(config), '--yolor', cwd=tmp_path, check=False)
    assert last_line(result) == (
        f'error: yolorize: model in {config} has neither a neck nor a '
        'backbone for feature alignment. Use feature_alignment=False '
        '(tools: --yolor pr) to add prediction refinement only.')
    assert_nothing_written(tmp_path)


def test_foldable_placement_without_an_fpn(run_tool, tmp_path):
    config = tmp_path / 'centernet.py'
    config.write_text(
        "_base_ = 'mmdet::centernet/centernet_r18_8xb16-crop512-140e_coco.py'"
        '\n')
    result = run_tool(
        'train.py',
        str(config),
        '--yolor',
        'foldable',
        cwd=tmp_path,
        check=False)
    assert last_line(result) == (
        'error: yolorize: the foldable placement puts the implicits on the '
        f'output convs of an FPN, and model.neck in {config} is '
        'CTResNetNeck. Use the default placement (--yolor all), whose neck '
        'implicits fold where they can.')
    assert_nothing_written(tmp_path)


def test_implicit_channels_disagree_with_the_tensor(run_tool, tiny_config,
                                                    tmp_path):
    cfg = Config.fromfile(tiny_config())
    cfg.model.neck = dict(
        type='YOLORNeck', neck=cfg.model.neck, alignment_channels=64)
    cfg.custom_imports = dict(imports=['mmdet_yolor'])
    cfg.dump(str(tmp_path / 'mismatch.py'))
    result = run_tool(
        'train.py', str(tmp_path / 'mismatch.py'), cwd=tmp_path, check=False)
    assert last_line(result) == (
        'error: ImplicitA was built for 64 channels but met a tensor of '
        'shape (2, 32, 8, 8) (channel dim 1). Set its channels to the '
        'out_channels of the layer that feeds it.')
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_non_finite_loss_stops_before_a_checkpoint(run_tool, tiny_config,
                                                   tmp_path):
    result = run_tool(
        'train.py',
        tiny_config(),
        '--cfg-options',
        'model.bbox_head.loss_cls.loss_weight=nan',
        cwd=tmp_path,
        check=False)
    assert last_line(result).startswith(
        'error: loss_cls is nan at iteration 1 (epoch 1); training stopped '
        'before saving non-finite weights.')
    assert not list((tmp_path / 'work').glob('*.pth'))


def test_amp_without_a_gpu(run_tool, tiny_config, tmp_path):
    # no CUDA device visible: mmengine's AmpOptimWrapper would assert
    result = run_tool(
        'train.py',
        tiny_config(),
        '--amp',
        cwd=tmp_path,
        env={'CUDA_VISIBLE_DEVICES': ''},
        check=False)
    assert last_line(result).startswith(
        'error: --amp (optim_wrapper.type=AmpOptimWrapper) needs a CUDA GPU')
    assert_nothing_written(tmp_path)
