# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from torch import nn
from torch.utils._pytree import tree_leaves

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.deploy import fold_implicit
from mmdet_yolor.deploy.fuse import (fold_add_into_consumer,
                                     fold_add_into_producer,
                                     fold_multiply_into_producer)
from mmdet_yolor.models.layers import BaseImplicit
from mmdet_yolor.testing import get_config, shrink_backbone

DETECTORS = {
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'sparse_rcnn': 'sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py',
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
}


@torch.no_grad()
def randomise_implicits(model, seed=0):
    """Non-trivial implicit values: far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, BaseImplicit):
            assert module.form == 'vector'
            module.implicit.copy_(
                module.offset +
                0.3 * torch.randn(module.channels, generator=generator))


def build_yolor(name, **yolorize_kwargs):
    cfg = yolorize(get_config(DETECTORS[name]), **yolorize_kwargs)
    torch.manual_seed(0)
    model = MODELS.build(shrink_backbone(cfg.model))
    model.init_weights()
    randomise_implicits(model)
    return model.eval()


def tensor_outputs(model, data):
    with torch.no_grad():
        return tree_leaves(model(**data, mode='tensor'))


def assert_close_outputs(expected, actual):
    assert len(expected) == len(actual) > 0
    for e, a in zip(expected, actual):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4 * e.abs().max())


def inputs(model, name):
    packed = demo_mm_inputs(
        batch_size=1,
        image_shapes=[(3, 128, 160)],
        num_items=[3],
        num_classes=80,
        with_mask=name == 'mask_rcnn')
    return model.data_preprocessor(packed, False)


# what the default (paper) placement can fold, per detector: neck levels
# folded, and whether prediction refinement folds
DEFAULT_FOLDS = {
    # P6 is max-pooled from P5: P5 and P6 keep their runtime add
    'faster_rcnn': (['0', '1', '2'], False),
    'mask_rcnn': (['0', '1', '2'], False),
    # no extra level: everything folds
    'sparse_rcnn': (['0', '1', '2', '3'], True),
    # P6 is a conv of P5 and P7 of P6: P5 and P6 keep theirs
    'fcos': (['0', '1', '4'], False),
    'atss': (['0', '1', '4'], False),
}


@pytest.mark.parametrize('name', DETECTORS)
def test_default_placement_folds_what_is_exact(name):
    model = build_yolor(name)
    data = inputs(model, name)
    expected = tensor_outputs(model, data)
    report = fold_implicit(copy.deepcopy(model))
    fuse_implicit(model)
    assert_close_outputs(expected, tensor_outputs(model, data))

    levels, heads_fold = DEFAULT_FOLDS[name]
    neck_sites = [s for s in report.sites if s.name.startswith('neck.')]
    assert [s.name.rsplit('.', 1)[1] for s in neck_sites if s.folded] == \
        levels
    head_sites = [s for s in report.sites if not s.name.startswith('neck.')]
    assert all(s.folded for s in head_sites) == heads_fold
    assert report.complete == (name == 'sparse_rcnn')
    # what folded no longer runs
    remaining = [
        n for n, m in model.named_modules() if isinstance(m, BaseImplicit)
    ]
    assert len(remaining) == sum(not s.folded for s in report.sites)


def test_kept_sites_say_why():
    report = fold_implicit(build_yolor('fcos'))
    why = {site.name: site.how for site in report.sites if not site.folded}
    assert why['neck.implicit_alignment.2'] == \
        'the FPN derives level 3 from this output'
    assert why['bbox_head.conv_cls.implicit_m.3'].startswith(
        'per-level implicits on a layer shared by every level')
    folded = build_yolor('fcos', share_across_levels=True)
    why = {site.name: site.how for site in fold_implicit(folded).sites}
    assert why['bbox_head.conv_cls.implicit_a.0'] == \
        'add before a padded 3x3 conv: exact only inside the zero border'
    assert why['bbox_head.conv_cls.implicit_m.0'].startswith('multiply folded')


@pytest.mark.parametrize('name', DETECTORS)
def test_foldable_placement_folds_completely_into_the_baseline(name):
    model = build_yolor(name, foldable=True)
    data = inputs(model, name)
    expected = tensor_outputs(model, data)
    fuse_implicit(model)
    state = model.state_dict()
    assert not [key for key in state if 'implicit' in key]

    # the folded weights load into the plain baseline model
    baseline = MODELS.build(shrink_backbone(get_config(DETECTORS[name]).model))
    baseline.load_state_dict(state, strict=True)
    baseline.eval()
    assert not any(isinstance(m, BaseImplicit) for m in baseline.modules())
    assert_close_outputs(expected, tensor_outputs(baseline, data))


def test_rules_on_single_layers():
    torch.manual_seed(0)
    x = torch.randn(4, 6)
    a, m = torch.randn(6), torch.randn(5)
    linear = nn.Linear(6, 5, bias=False)
    expected = m * linear(x + a)
    fold_add_into_consumer(linear, a)
    fold_multiply_into_producer(linear, m)
    torch.testing.assert_close(linear(x), expected)

    x = torch.randn(2, 6, 5, 5)
    conv = nn.Conv2d(6, 5, 3, padding=1)
    expected = conv(x) + a[:5].view(1, 5, 1, 1)
    fold_add_into_producer(conv, a[:5])
    torch.testing.assert_close(conv(x), expected)

    conv = nn.Conv2d(6, 5, 1)
    expected = m.view(1, 5, 1, 1) * conv(x + a.view(1, 6, 1, 1))
    fold_add_into_consumer(conv, a)
    fold_multiply_into_producer(conv, m)
    torch.testing.assert_close(conv(x), expected)


def test_fusing_twice_changes_nothing_more():
    for yolorize_kwargs in (dict(), dict(foldable=True)):
        model = build_yolor('faster_rcnn', **yolorize_kwargs)
        data = inputs(model, 'faster_rcnn')
        fuse_implicit(model)
        once = tensor_outputs(model, data)
        report = fold_implicit(model)
        assert all(not site.folded for site in report.sites)
        fuse_implicit(model)
        assert_close_outputs(once, tensor_outputs(model, data))
