# Copyright (c) mmdet_yolor contributors. All rights reserved.
import json
import os
import time

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from mmdet_yolor import yolorize
from mmdet_yolor.checks import (annotation_files, check_annotation_file,
                                check_checkpoint_fits, check_inputs,
                                find_resumable_checkpoint)
from mmdet_yolor.errors import CheckpointError, InputError

from yolor_testing import tiny_fcos_config

COCO = dict(
    images=[dict(id=1, width=100, height=80, file_name='a.png')],
    annotations=[dict(id=5, image_id=1, bbox=[10, 10, 20, 20])],
    categories=[dict(id=1, name='circle')])


def write_json(path, content):
    path.write_text(json.dumps(content))
    return str(path)


def test_valid_annotation_file_passes(tmp_path):
    check_annotation_file(write_json(tmp_path / 'ok.json', COCO))


def test_missing_annotation_file(tmp_path):
    with pytest.raises(
            InputError,
            match='annotation file .*nope.json does '
            'not exist; check data_root and ann_file'):
        check_annotation_file(str(tmp_path / 'nope.json'))


def test_malformed_annotation_file(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{"images": [')
    with pytest.raises(
            InputError,
            match='bad.json is not valid JSON: '
            'Expecting value: line 1 column 13'):
        check_annotation_file(str(path))
    with pytest.raises(InputError, match="has no 'categories' list"):
        check_annotation_file(
            write_json(tmp_path / 'x.json', dict(images=[], annotations=[])))


@pytest.mark.parametrize('bbox',
                         [[90, 10, 20, 20], [-5, 0, 10, 10], [0, 70, 10, 11.5]]
                         )
def test_box_outside_image(tmp_path, bbox):
    coco = dict(COCO, annotations=[dict(id=5, image_id=1, bbox=bbox)])
    with pytest.raises(
            InputError,
            match=r'annotation 5 has bbox .* outside '
            r'its 100x80 image a.png'):
        check_annotation_file(write_json(tmp_path / 'out.json', coco))


def test_annotation_files_of_a_config(tmp_path):
    cfg = tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    # ShapesDataset generates its data on first use: nothing to check yet
    assert annotation_files(cfg, ['train_dataloader']) == []
    cfg = tiny_fcos_config('data', 'work', dataset_type='CocoDataset')
    assert annotation_files(cfg, ['train_dataloader', 'val_dataloader']) == [
        'data/annotations/instances_train.json',
        'data/annotations/instances_val.json'
    ]


@pytest.fixture
def fcos(tmp_path):
    cfg = tiny_fcos_config(str(tmp_path / 'data'), str(tmp_path / 'work'))
    torch.manual_seed(0)
    path = tmp_path / 'fcos.pth'
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), path)
    return cfg, str(path)


def test_checkpoint_of_another_architecture(fcos, tmp_path):
    cfg, checkpoint = fcos
    other = tiny_fcos_config(str(tmp_path), str(tmp_path))
    other.model.bbox_head.stacked_convs = 2
    check_checkpoint_fits(other, checkpoint, exact=False)  # warm start
    with pytest.raises(
            CheckpointError,
            match=r'does not fit the model of .*: '
            r'6 model parameters missing from it \(e.g. '
            r'bbox_head.cls_convs.1.conv.weight\), 0 unknown to '
            r'the model, 0 of another shape.$'):
        check_checkpoint_fits(other, checkpoint, exact=True)
    retina = Config.fromfile('configs/atss/atss_r50_fpn_1x_coco.py')
    with pytest.raises(CheckpointError, match='another architecture'):
        check_checkpoint_fits(retina, checkpoint, exact=False)


def test_baseline_checkpoint_into_yolor(fcos):
    cfg, checkpoint = fcos
    yolor = yolorize(cfg)
    check_checkpoint_fits(yolor, checkpoint, exact=False)  # warm start
    with pytest.raises(CheckpointError, match='trained without YOLOR'):
        check_checkpoint_fits(yolor, checkpoint, exact=True)


def test_check_inputs_tests_checkpoints_exactly(fcos):
    cfg, checkpoint = fcos
    cfg.load_from = checkpoint
    check_inputs(cfg, ['test_dataloader'])
    cfg = yolorize(cfg)
    check_inputs(cfg, ['train_dataloader'])  # warm start is fine
    with pytest.raises(CheckpointError):
        check_inputs(cfg, ['test_dataloader'])


def test_find_resumable_checkpoint(fcos, tmp_path):
    _, checkpoint = fcos
    work = tmp_path / 'work'
    work.mkdir()
    assert find_resumable_checkpoint(str(work))['checkpoint'] is None
    epoch_1 = work / 'epoch_1.pth'
    epoch_1.write_bytes(open(checkpoint, 'rb').read())
    (work / 'last_checkpoint').write_text(str(epoch_1))
    assert find_resumable_checkpoint(str(work))['checkpoint'] == str(epoch_1)

    # killed while writing epoch 2 and the pointer to it
    time.sleep(0.01)
    epoch_2 = work / 'epoch_2.pth'
    epoch_2.write_bytes(epoch_1.read_bytes()[:300])
    (work / 'last_checkpoint').write_text(str(epoch_2)[:-3])
    found = find_resumable_checkpoint(str(work))
    assert found['checkpoint'] == str(epoch_1)
    assert found['note'].endswith('is damaged; resuming from the newest '
                                  f'intact checkpoint {epoch_1}')
    os.remove(work / 'last_checkpoint')
    assert find_resumable_checkpoint(str(work))['checkpoint'] == str(epoch_1)
