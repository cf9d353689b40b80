# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from torch import nn

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.analysis.stages import stage_outputs
from mmdet_yolor.deploy import fold_and_strip, fold_implicit, strip_folded
from mmdet_yolor.models.layers import BaseImplicit
from mmdet_yolor.models.layers.folding import (fold_add_into_consumer,
                                               fold_add_into_producer,
                                               fold_multiply_into_producer)
from mmdet_yolor.package_data import get_config

from yolor_testing import (SEED_DETECTORS, assert_close_stages,
                           randomise_implicits, shrink_backbone)

# The YOLOR placements of the tools and wrappers, as yolorize arguments.
PLACEMENTS = {
    'all': dict(),
    'foldable': dict(foldable=True),
    'share_across_levels': dict(share_across_levels=True),
}


def build_yolor(name, **yolorize_kwargs):
    cfg = yolorize(get_config(SEED_DETECTORS[name]), **yolorize_kwargs)
    torch.manual_seed(0)
    model = MODELS.build(shrink_backbone(cfg.model))
    model.init_weights()
    randomise_implicits(model)
    return model.eval()


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


@pytest.mark.parametrize('name', SEED_DETECTORS)
def test_default_placement_folds_what_is_exact(name):
    model = build_yolor(name)
    data = inputs(model, name)
    expected, proposals = stage_outputs(model, data)
    report = fold_implicit(copy.deepcopy(model))
    fuse_implicit(model)
    assert_close_stages(expected, stage_outputs(model, data, proposals)[0])

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


def test_stage_outputs_catch_a_wrong_fold():
    # the stage-wise comparison still sees a fold that is off by 1e-3
    model = build_yolor('faster_rcnn')
    data = inputs(model, 'faster_rcnn')
    expected, proposals = stage_outputs(model, data)
    fuse_implicit(model)
    with torch.no_grad():
        model.roi_head.bbox_head.fc_cls.bias.add_(1e-3)
    with pytest.raises(AssertionError):
        assert_close_stages(expected, stage_outputs(model, data, proposals)[0])


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


@pytest.mark.parametrize('name', SEED_DETECTORS)
def test_foldable_placement_folds_completely_into_the_baseline(name):
    model = build_yolor(name, foldable=True)
    data = inputs(model, name)
    expected, proposals = stage_outputs(model, data)
    fuse_implicit(model)
    state = model.state_dict()
    assert not [key for key in state if 'implicit' in key]
    # every YOLOR layer is of its plain mmdet type again
    assert not [m for m in model.modules() if 'YOLORConv' in type(m).__name__]

    # the folded weights load into the plain baseline model
    baseline = MODELS.build(
        shrink_backbone(get_config(SEED_DETECTORS[name]).model))
    baseline.load_state_dict(state, strict=True)
    baseline.eval()
    assert not any(isinstance(m, BaseImplicit) for m in baseline.modules())
    assert_close_stages(expected, stage_outputs(baseline, data, proposals)[0])


@pytest.mark.parametrize('placement', PLACEMENTS)
@pytest.mark.parametrize('name', SEED_DETECTORS)
def test_fusing_twice_changes_nothing_more(name, placement):
    model = build_yolor(name, **PLACEMENTS[placement])
    data = inputs(model, name)
    fuse_implicit(model)
    once, proposals = stage_outputs(model, data)
    report = fold_implicit(model)
    assert not [site for site in report.sites if site.folded]
    fuse_implicit(model)
    twice = stage_outputs(model, data, proposals)[0]
    assert once.keys() == twice.keys()
    for stage in once:
        for a, b in zip(once[stage], twice[stage]):
            assert torch.equal(a, b), stage


def test_folding_without_strip_twice_folds_once():
    model = build_yolor('sparse_rcnn')
    data = inputs(model, 'sparse_rcnn')
    expected, proposals = stage_outputs(model, data)
    first = fold_implicit(model)
    assert first.complete and first.sites
    assert fold_implicit(model).sites == []  # nothing folded twice
    assert_close_stages(expected, stage_outputs(model, data, proposals)[0])
    strip_folded(model)
    assert not any(isinstance(m, BaseImplicit) for m in model.modules())


@pytest.mark.parametrize('strip_partial', [True, False])
def test_fold_and_strip_strips_a_partial_fold_only_if_asked(strip_partial):
    # FCOS's paper placement keeps some implicits (DEFAULT_FOLDS)
    model = build_yolor('fcos')
    keys = set(model.state_dict())
    report = fold_and_strip(model, strip_partial=strip_partial)
    assert report.sites and not report.complete
    folded = [site.name for site in report.sites if site.folded]
    still_there = [
        name for name in folded
        if isinstance(model.get_submodule(name), BaseImplicit)
    ]
    if strip_partial:
        assert not still_there and set(model.state_dict()) < keys
    else:  # saved for the YOLOR config: every key stays
        assert still_there == folded and set(model.state_dict()) == keys


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


def test_rules_on_grouped_transposed_and_1d_layers():
    torch.manual_seed(0)
    # a grouped transposed conv (Grid R-CNN's deconv2): scale its outputs
    deconv = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, groups=2)
    x, m = torch.randn(2, 6, 5, 5), torch.randn(4)
    expected = m.view(1, 4, 1, 1) * deconv(x)
    fold_multiply_into_producer(deconv, m)
    torch.testing.assert_close(deconv(x), expected)
    # a grouped 1x1 conv: the add folds group by group
    conv = nn.Conv2d(6, 4, 1, groups=2)
    a = torch.randn(6)
    expected = conv(x + a.view(1, 6, 1, 1))
    fold_add_into_consumer(conv, a)
    torch.testing.assert_close(conv(x), expected)
    # a 1x1 Conv1d (PointRend's point head)
    conv = nn.Conv1d(6, 3, 1)
    points = torch.randn(2, 6, 7)
    expected = m[:3].view(1, 3, 1) * conv(points + a.view(1, 6, 1))
    fold_add_into_consumer(conv, a)
    fold_multiply_into_producer(conv, m[:3])
    torch.testing.assert_close(conv(points), expected)
