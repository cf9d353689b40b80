# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Walking nested configs and dropping pretrained weights."""
import copy

import pytest

from mmdet_yolor.config_edits import (loads_weights, nested_dicts,
                                      strip_pretrained)
from mmdet_yolor.package_data import get_config


def test_nested_dicts_finds_every_dict_through_lists_and_tuples():
    inner, deep = dict(c=1), dict(d=2)
    root = dict(a=[inner, (3, deep)], b='text', e=None)
    found = nested_dicts(root)
    assert found[0] is root
    assert len(found) == 3
    assert any(d is inner for d in found) and any(d is deep for d in found)
    assert nested_dicts([inner, 'x']) == [inner]
    assert nested_dicts('text') == []


@pytest.mark.parametrize('init_cfg, loads', [
    (dict(type='Pretrained', checkpoint='torchvision://resnet50'), True),
    (dict(type='PretrainedInit', checkpoint='x.pth'), True),
    (dict(checkpoint='pvt.pth'), True),
    (dict(type='Kaiming', layer='Conv2d'), False),
    (None, False),
    ([dict(type='Pretrained', checkpoint='x.pth')], False),
])
def test_loads_weights_tells_the_init_cfgs_that_load_a_checkpoint(
        init_cfg, loads):
    assert loads_weights(init_cfg) is loads


def test_strip_pretrained_drops_every_kind_of_weight_reference():
    model = dict(
        type='Detector',
        backbone=dict(
            type='ResNet',
            init_cfg=dict(type='Pretrained', checkpoint='resnet.pth')),
        neck=dict(
            type='FPN',
            init_cfg=[
                dict(type='Xavier', layer='Conv2d'),
                dict(type='Pretrained', checkpoint='fpn.pth')
            ]),
        heads=[
            dict(type='A', pretrained='a.pth'),
            dict(type='B', pretrained=True),
            dict(type='C', pretrained=False, init_cfg=None),
        ])
    stripped = strip_pretrained(model)
    assert model['backbone']['init_cfg'] is None
    # the other init_cfg entries of a list stay
    assert model['neck']['init_cfg'] == [dict(type='Xavier', layer='Conv2d')]
    assert model['heads'][0]['pretrained'] is None
    assert model['heads'][1]['pretrained'] is False
    # the modules that lost weights, as the dicts of the config
    expected = [model['backbone'], model['neck']] + model['heads'][:2]
    assert len(stripped) == 4
    assert all(any(s is e for s in stripped) for e in expected)


def test_strip_pretrained_leaves_a_config_without_weights_unchanged():
    model = dict(
        backbone=dict(type='ResNet', init_cfg=dict(type='Kaiming')),
        head=dict(type='H', pretrained=None))
    before = copy.deepcopy(model)
    assert strip_pretrained(model) == []
    assert model == before


def test_a_zoo_config_loads_no_weights_after_stripping():
    model = get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py').model
    assert loads_weights(model.backbone.init_cfg)
    stripped = strip_pretrained(model)
    assert [s.type for s in stripped] == ['ResNet']
    assert not any(
        loads_weights(d.get('init_cfg')) for d in nested_dicts(model))
