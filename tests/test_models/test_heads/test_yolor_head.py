# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from torch import nn

from mmdet_yolor.models import implicit_layers, refined_layers, wrapped_type
from mmdet_yolor.models.heads import LevelOwnerMixin
from mmdet_yolor.models.heads.levels import LevelSequentialMixin
from mmdet_yolor.models.layers import ImplicitA, ImplicitM

FPN_STRIDES = [8, 16, 32, 64, 128]
TRAIN_CFG_RPN = dict(
    assigner=dict(
        type='MaxIoUAssigner',
        pos_iou_thr=0.7,
        neg_iou_thr=0.3,
        min_pos_iou=0.3,
        ignore_iof_thr=-1),
    sampler=dict(
        type='RandomSampler',
        num=256,
        pos_fraction=0.5,
        neg_pos_ub=-1,
        add_gt_as_proposals=False),
    allowed_border=-1,
    pos_weight=-1,
    debug=False)

# One config per head type of the five detectors (and RetinaNet); inputs are
# (config, input builder).
HEADS = {
    'RPNHead':
    dict(
        type='RPNHead',
        in_channels=8,
        feat_channels=8,
        num_classes=1,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64])),
    'RetinaHead':
    dict(
        type='RetinaHead',
        num_classes=3,
        in_channels=8,
        feat_channels=8,
        stacked_convs=1,
        anchor_generator=dict(
            type='AnchorGenerator',
            octave_base_scale=4,
            scales_per_octave=3,
            ratios=[0.5, 1.0, 2.0],
            strides=FPN_STRIDES)),
    'FCOSHead':
    dict(
        type='FCOSHead',
        num_classes=3,
        in_channels=8,
        feat_channels=32,
        stacked_convs=1,
        strides=FPN_STRIDES),
    'ATSSHead':
    dict(
        type='ATSSHead',
        num_classes=3,
        in_channels=8,
        feat_channels=32,
        stacked_convs=1,
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=8,
            scales_per_octave=1,
            strides=FPN_STRIDES)),
    'Shared2FCBBoxHead':
    dict(
        type='Shared2FCBBoxHead',
        in_channels=8,
        fc_out_channels=16,
        roi_feat_size=7,
        num_classes=3),
    'FCNMaskHead':
    dict(
        type='FCNMaskHead',
        num_convs=1,
        in_channels=8,
        conv_out_channels=8,
        num_classes=3),
    'DIIHead':
    dict(
        type='DIIHead',
        num_classes=3,
        num_ffn_fcs=2,
        num_heads=2,
        num_cls_fcs=1,
        num_reg_fcs=1,
        feedforward_channels=32,
        in_channels=16,
        dropout=0.0,
        dynamic_conv_cfg=dict(
            type='DynamicConv',
            in_channels=16,
            feat_channels=4,
            out_channels=16,
            input_feat_shape=7,
            act_cfg=dict(type='ReLU', inplace=True),
            norm_cfg=dict(type='LN'))),
}


def head_inputs(name):
    torch.manual_seed(1)
    if name in ('RPNHead', 'RetinaHead', 'FCOSHead', 'ATSSHead'):
        sizes = [16, 8, 4, 2, 1]
        return (tuple(torch.randn(2, 8, s, s) for s in sizes), )
    if name == 'Shared2FCBBoxHead':
        return (torch.randn(5, 8, 7, 7), )
    if name == 'FCNMaskHead':
        return (torch.randn(5, 8, 14, 14), )
    return (torch.randn(2 * 3, 16, 7, 7), torch.randn(2, 3, 16))


def build_pair(name, implicit_cfg=None, **wrapper_kwargs):
    """Build the plain head and its YOLOR version holding the same original
    weights."""
    torch.manual_seed(0)
    plain = MODELS.build(copy.deepcopy(HEADS[name]))
    plain.init_weights()
    yolor = MODELS.build(
        dict(
            type='YOLORHead',
            head=copy.deepcopy(HEADS[name]),
            implicit_cfg=implicit_cfg,
            **wrapper_kwargs))
    yolor.init_weights()
    missing, unexpected = yolor.load_state_dict(
        plain.state_dict(), strict=False)
    assert not unexpected
    assert missing and all('.implicit_' in key for key in missing)
    return plain.eval(), yolor.eval()


def flatten(outputs):
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    return [t for item in outputs for t in flatten(item)]


@pytest.mark.parametrize('name', HEADS)
def test_wrapped_head_is_a_subclass_keeping_keys(name):
    plain, yolor = build_pair(name)
    assert isinstance(yolor, type(plain))
    assert type(yolor).__name__ == f'YOLOR{name}'
    plain_keys = set(plain.state_dict())
    yolor_keys = set(yolor.state_dict())
    assert plain_keys < yolor_keys
    assert all('.implicit_' in key for key in yolor_keys - plain_keys)


@pytest.mark.parametrize('name', HEADS)
def test_only_heads_with_levels_get_a_forward_of_their_own(name):
    # another forward is another frame for dynamo (and on torch 2.4 one more
    # graph break per call where the head's forward breaks: DIIHead)
    plain, yolor = build_pair(name)
    with_levels = name not in ('Shared2FCBBoxHead', 'FCNMaskHead', 'DIIHead')
    assert isinstance(yolor, LevelOwnerMixin) == with_levels
    assert (type(yolor).forward is type(plain).forward) != with_levels


@pytest.mark.parametrize('name', HEADS)
def test_identity_init_equals_plain_head(name):
    plain, yolor = build_pair(name, implicit_cfg=dict(init='identity'))
    with torch.no_grad():
        expected = flatten(plain(*head_inputs(name)))
        actual = flatten(yolor(*head_inputs(name)))
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert torch.equal(e, a)


@pytest.mark.parametrize('name', HEADS)
def test_paper_init_changes_outputs_and_gets_gradients(name):
    plain, yolor = build_pair(name)
    yolor.train()
    outputs = flatten(yolor(*head_inputs(name)))
    with torch.no_grad():
        expected = flatten(plain(*head_inputs(name)))
    assert any(not torch.allclose(e, a) for e, a in zip(expected, outputs))
    sum(o.float().sum() for o in outputs).backward()
    implicit_grads = [
        p.grad for key, p in yolor.named_parameters() if '.implicit_' in key
    ]
    assert implicit_grads and all(g is not None and g.abs().sum() > 0
                                  for g in implicit_grads)


# The prediction layers of each head type and whether the head applies them
# to every pyramid level in turn.
PREDICTION_LAYER_NAMES = {
    'RPNHead': (('rpn_cls', 'rpn_reg'), True),
    'RetinaHead': (('retina_cls', 'retina_reg'), True),
    'FCOSHead': (('conv_cls', 'conv_reg', 'conv_centerness'), True),
    'ATSSHead': (('atss_cls', 'atss_reg', 'atss_centerness'), True),
    'Shared2FCBBoxHead': (('fc_cls', 'fc_reg'), False),
    'FCNMaskHead': (('conv_logits', ), False),
    'DIIHead': (('fc_cls', 'fc_reg'), False),
}


@pytest.mark.parametrize('name', HEADS)
def test_prediction_layers_follow_idetect_pattern(name):
    """Each prediction layer computes ImplicitM(layer(ImplicitA(x))), one
    pair per level where the head shares the layer across levels."""
    _, yolor = build_pair(name)
    names, shared = PREDICTION_LAYER_NAMES[name]
    assert list(
        refined_layers(yolor).values()) == [getattr(yolor, n) for n in names]
    for layer in refined_layers(yolor).values():
        assert type(layer).__name__ == f'YOLOR{wrapped_type(layer).__name__}'
        levels = len(FPN_STRIDES) if shared else 1
        assert len(layer.implicit_a) == len(layer.implicit_m) == levels
        assert all(isinstance(m, ImplicitA) for m in layer.implicit_a)
        assert all(isinstance(m, ImplicitM) for m in layer.implicit_m)
        x = torch.randn(3, layer.implicit_a[0].channels, 4, 4)
        if isinstance(layer, torch.nn.Linear):
            x = x[..., 0, 0]
        cursor = layer.yolor_levels
        assert (cursor is not None) == shared
        if shared:  # level 0, as in the head's first forward_single
            cursor.begin()
            cursor.start_level(yolor.yolor_level_index)
        with torch.no_grad():
            expected = layer.implicit_m[0](
                torch.nn.functional.linear(layer.implicit_a[0]
                                           (x), layer.weight, layer.bias)
                if isinstance(layer, torch.nn.Linear) else layer._conv_forward(
                    layer.implicit_a[0](x), layer.weight, layer.bias))
            assert torch.allclose(layer(x), expected)
        if shared:
            cursor.end(check=False)


@pytest.mark.parametrize('name', ['FCOSHead', 'RPNHead', 'ATSSHead'])
def test_shared_head_uses_one_implicit_per_level(name):
    _, yolor = build_pair(name, implicit_cfg=dict(init='identity'))
    cls_layer = getattr(yolor, PREDICTION_LAYER_NAMES[name][0][0])
    with torch.no_grad():
        cls_layer.implicit_m[2].implicit.zero_()
        cls_scores = yolor(*head_inputs(name))[0]
    assert torch.count_nonzero(cls_scores[2]) == 0
    assert all(
        torch.count_nonzero(cls_scores[level]) > 0 for level in (0, 1, 3, 4))
    # every forward starts at level 0 again
    with torch.no_grad():
        again = yolor.forward(*head_inputs(name))[0]
    assert torch.count_nonzero(again[2]) == 0


def test_interrupted_forward_starts_again_at_level_0():
    _, yolor = build_pair('FCOSHead', implicit_cfg=dict(init='identity'))
    features = head_inputs('FCOSHead')[0]
    broken = features[:2] + (torch.randn(2, 3, 4, 4), ) + features[3:]
    with pytest.raises(RuntimeError):
        yolor(broken)  # fails at level 2, after two levels
    assert not yolor.yolor_levels.active
    with torch.no_grad():
        yolor.conv_cls.implicit_m[0].implicit.zero_()
        scores = yolor(features)[0]
    assert torch.count_nonzero(scores[0]) == 0
    assert torch.count_nonzero(scores[1]) > 0


def test_levels_that_do_not_match_the_calls_are_an_error():
    _, yolor = build_pair('FCOSHead')
    features = head_inputs('FCOSHead')[0]
    # three levels into a head built for five
    with pytest.raises(
            RuntimeError,
            match=r'FCOSHead has implicits for 5 pyramid levels, but in this '
            r'forward conv_cls, conv_reg, conv_centerness ran 3 levels.*'
            r'share_across_levels=True'):
        yolor(features[:3])
    # a stray sixth level within one forward (RPNHead runs every feature
    # it is given; FCOS zips them with its 5 scales)
    _, rpn = build_pair('RPNHead')
    with pytest.raises(
            RuntimeError,
            match=r'RPNHead has implicits for 5 pyramid levels on rpn_cls, '
            r'rpn_reg but started a 6th level in one forward.*'
            r'share_across_levels=True'):
        rpn(features + features[-1:])
    # a shared layer on its own has no level
    with pytest.raises(
            RuntimeError,
            match=r'FCOSHead.conv_cls has implicits for 5 pyramid levels and '
            r'takes its level from a forward of FCOSHead, but was called '
            r'outside one'):
        yolor.conv_cls(torch.randn(1, 32, 4, 4))
    # no stale state: the next forward works
    assert len(yolor(features)[0]) == 5


def test_level_is_set_by_forward_single_however_often_a_layer_runs():
    # a level is a forward_single call: a layer running twice within it
    # stays at that level
    _, yolor = build_pair('FCOSHead', implicit_cfg=dict(init='identity'))
    with torch.no_grad():
        yolor.conv_cls.implicit_m[1].implicit.zero_()
    cursor = yolor.yolor_levels
    cursor.begin()
    for level in range(2):
        cursor.start_level(yolor.yolor_level_index)
        x = torch.randn(1, 32, 4, 4)
        first, second = yolor.conv_cls(x), yolor.conv_cls(x)
        assert torch.equal(first, second)
        assert (torch.count_nonzero(first) == 0) == (level == 1)
    cursor.end(check=False)


def tood_yolor_head():
    """A small YOLOR TOODHead (identity implicits): TOOD runs its levels in
    its own forward, without forward_single."""
    head = dict(
        type='TOODHead',
        num_classes=3,
        in_channels=8,
        feat_channels=8,
        stacked_convs=2,
        norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
        anchor_generator=dict(
            type='AnchorGenerator',
            ratios=[1.0],
            octave_base_scale=8,
            scales_per_octave=1,
            strides=FPN_STRIDES),
        initial_loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            activated=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0))
    torch.manual_seed(0)
    return MODELS.build(
        dict(type='YOLORHead', head=head,
             implicit_cfg=dict(init='identity'))).eval()


def test_head_looping_over_levels_itself_counts_each_layer_calls():
    yolor = tood_yolor_head()
    assert not yolor.yolor_levels.per_level_entry
    assert len(yolor.tood_cls.implicit_m) == 5
    features = head_inputs('FCOSHead')[0]
    with torch.no_grad():
        before = yolor(features)[0]
        yolor.tood_cls.implicit_m[3].implicit.zero_()
        after = yolor(features)[0]
    # only level 3 met the changed implicit
    for level in range(5):
        assert torch.equal(before[level], after[level]) == (level != 3)
    with pytest.raises(RuntimeError, match=r'TOODHead.tood_cls ran 3 times'):
        yolor(features[:3])


def test_sequential_holding_a_shared_layer_runs_it_at_each_level():
    # TOOD's cls_prob_module (conv, relu, conv) ends in a shared prediction
    # layer: the Sequential gets a forward of YOLOR's (LevelSequentialMixin)
    # that dynamo runs eagerly on its own, and still runs its children in
    # order, each call of the shared layer at its level
    yolor = tood_yolor_head()
    assert isinstance(yolor.cls_prob_module, LevelSequentialMixin)
    assert isinstance(yolor.cls_prob_module, nn.Sequential)
    assert len(yolor.cls_prob_module[2].implicit_m) == 5
    features = head_inputs('FCOSHead')[0]
    with torch.no_grad():
        before = yolor(features)[0]
        yolor.cls_prob_module[2].implicit_m[1].implicit.fill_(2.0)
        after = yolor(features)[0]
    for level in range(5):
        assert torch.equal(before[level], after[level]) == (level != 1)


def test_cascade_rpn_stage_layers_get_the_levels_of_their_stage():
    # the stage heads, not the outer CascadeRPNHead, apply the layers to
    # the 5 levels
    stage = dict(
        type='StageCascadeRPNHead',
        in_channels=8,
        feat_channels=8,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[1.0],
            strides=[4, 8, 16, 32, 64]),
        adapt_cfg=dict(type='dilation', dilation=3),
        bridged_feature=True,
        with_cls=False,
        reg_decoded_bbox=True,
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=(.0, .0, .0, .0),
            target_stds=(0.1, 0.1, 0.5, 0.5)),
        loss_bbox=dict(type='IoULoss', linear=True, loss_weight=10.0))
    second = dict(
        stage,
        adapt_cfg=dict(type='offset'),
        bridged_feature=False,
        with_cls=True,
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0))
    yolor = MODELS.build(
        dict(
            type='YOLORHead',
            head=dict(
                type='CascadeRPNHead',
                num_classes=1,
                num_stages=2,
                stages=[stage, second],
                train_cfg=None,
                test_cfg=None)))
    refined = {
        name: module
        for name, module in yolor.named_modules()
        if hasattr(module, 'yolor_site')
    }
    assert sorted(refined) == [
        'stages.0.rpn_reg', 'stages.1.rpn_cls', 'stages.1.rpn_reg'
    ]
    for name, layer in refined.items():
        assert len(layer.implicit_m) == 5
        assert layer.yolor_levels is yolor.stages[int(
            name.split('.')[1])].yolor_levels


def test_share_across_levels_uses_one_pair():
    _, yolor = build_pair('FCOSHead', share_across_levels=True)
    assert len(yolor.conv_cls.implicit_a) == 1
    assert len(yolor.conv_cls.implicit_m) == 1
    # one pair serves any number of calls
    for _ in range(7):
        yolor.conv_cls(torch.randn(1, 32, 4, 4))


def test_init_cfg_override_does_not_touch_implicits():
    # FCOS re-initialises everything named conv_cls with N(0, 0.01) and a
    # focal-loss bias; the ImplicitM below it must stay around 1
    _, yolor = build_pair('FCOSHead', implicit_cfg=dict(form='nn'))
    values = torch.cat([m.representation() for m in yolor.conv_cls.implicit_m])
    assert abs(values.mean().item() - 1) < 0.05


def test_init_by_layer_type_still_reaches_refined_layers():
    # FCOS initialises conv_reg through its layer type ('Conv2d') only:
    # YOLORConv2d must still match it
    plain, yolor = build_pair('FCOSHead')
    torch.manual_seed(3)
    yolor.conv_reg.weight.data.fill_(1.)
    yolor.init_weights()
    assert yolor.conv_reg.weight.std() < 0.02


def test_dii_head_keeps_implicit_init():
    # DIIHead xavier-initialises every matrix, including the projections of
    # the 'nn' form; YOLORHead re-initialises the implicits after it
    _, yolor = build_pair('DIIHead', implicit_cfg=dict(form='nn'))
    for implicit in yolor.fc_cls.implicit_m:
        assert abs(implicit.representation().mean().item() - 1) < 0.05
        assert implicit.representation().std().item() < 0.05


def test_injected_head_kwargs_reach_the_head():
    # detectors inject train_cfg/test_cfg/num_classes at the top level
    head = MODELS.build(
        dict(
            type='YOLORHead',
            head=HEADS['RPNHead'],
            train_cfg=ConfigDict(TRAIN_CFG_RPN),
            num_classes=1))
    assert head.train_cfg.allowed_border == -1


def test_head_without_prediction_layers_gets_no_implicits(caplog):
    head = MODELS.build(
        dict(
            type='YOLORHead',
            head=dict(
                type='EmbeddingRPNHead',
                num_proposals=4,
                proposal_feature_channel=8)))
    assert type(head).__name__ == 'YOLOREmbeddingRPNHead'
    assert not refined_layers(head) and not implicit_layers(head)


def test_head_is_built_as_its_own_type_first():
    # DETRHead applies its class weights only when `self.__class__ is
    # DETRHead`: the wrapper must build the head as a DETRHead
    head = MODELS.build(
        dict(
            type='YOLORHead',
            head=dict(
                type='DETRHead',
                num_classes=3,
                embed_dims=16,
                loss_cls=dict(
                    type='CrossEntropyLoss',
                    bg_cls_weight=0.1,
                    use_sigmoid=False,
                    loss_weight=1.0,
                    class_weight=1.0))))
    assert head.bg_cls_weight == 0.1
    assert head.loss_cls.class_weight[-1] == pytest.approx(0.1)


def test_unknown_head_type_is_refused():
    with pytest.raises(KeyError, match="'NoSuchHead' is not registered"):
        MODELS.build(dict(type='YOLORHead', head=dict(type='NoSuchHead')))


def test_deepcopy_gives_the_copy_its_own_implicits():
    # EMA hooks deep-copy the model; the copy must use its own implicits
    _, yolor = build_pair('FCOSHead', implicit_cfg=dict(init='identity'))
    clone = copy.deepcopy(yolor)
    with torch.no_grad():
        clone.conv_cls.implicit_m[0].implicit.zero_()
        original = yolor(*head_inputs('FCOSHead'))[0][0]
        copied = clone(*head_inputs('FCOSHead'))[0][0]
    assert torch.count_nonzero(original) > 0
    assert torch.count_nonzero(copied) == 0


@pytest.mark.parametrize('name,with_input', [('FCOSHead', False),
                                             ('RPNHead', True),
                                             ('Shared2FCBBoxHead', True)])
def test_foldable_input_implicits(name, with_input):
    _, yolor = build_pair(name, input_implicit='foldable')
    assert refined_layers(yolor)
    for layer in refined_layers(yolor).values():
        assert hasattr(layer, 'implicit_a') == with_input
        assert hasattr(layer, 'implicit_m')
    yolor(*head_inputs(name))


def test_no_input_implicits_and_bad_mode():
    _, yolor = build_pair('RPNHead', input_implicit='none')
    assert not hasattr(yolor.rpn_cls, 'implicit_a')
    with pytest.raises(ValueError, match='input_implicit must be one of'):
        MODELS.build(
            dict(
                type='YOLORHead', head=HEADS['RPNHead'],
                input_implicit='some'))
