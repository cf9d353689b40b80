# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Feature alignment mixed into a module (one implicit per output level)
and into an output conv (one implicit), without the YOLORNeck wrapper."""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from torch import nn

from mmdet_yolor.models.foldable import ALIGNMENT
from mmdet_yolor.models.layers import ImplicitA, ImplicitC, ImplicitM
from mmdet_yolor.models.layers.implicit import is_implicit_parameter
from mmdet_yolor.models.necks.alignment import (ALIGNMENT_ATTRIBUTE,
                                                FeatureAlignmentMixin,
                                                OutputConvAlignmentMixin,
                                                attach_alignment,
                                                attach_output_conv_alignment)
from mmdet_yolor.models.necks.fpn_folding import FOLDED_HOW
from mmdet_yolor.models.wrapping import mix_into

from yolor_testing import randomise_implicits

# no extra levels: every level's alignment folds into its fpn_conv
FPN_CFG = dict(type='FPN', in_channels=[4, 8], out_channels=6, num_outs=2)


def inputs():
    torch.manual_seed(1)
    return [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]


def aligned_fpn(operator='add', **implicit_cfg):
    torch.manual_seed(0)
    neck = mix_into(MODELS.build(FPN_CFG), FeatureAlignmentMixin)
    attach_alignment(neck, [6, 6], operator, implicit_cfg)
    randomise_implicits(neck)
    return neck.eval()


def test_the_alignment_attribute_holds_implicit_parameters():
    # the optimizer finds implicit parameters by this prefix
    neck = aligned_fpn()
    keys = [k for k in neck.state_dict() if k.startswith(ALIGNMENT_ATTRIBUTE)]
    assert keys == [
        f'{ALIGNMENT_ATTRIBUTE}.0.implicit',
        f'{ALIGNMENT_ATTRIBUTE}.1.implicit'
    ]
    assert all(is_implicit_parameter(k) for k in keys)


@pytest.mark.parametrize('operator, combine', [
    ('add', lambda out, g: out + g),
    ('multiply', lambda out, g: out * g),
])
def test_each_output_level_is_combined_with_its_own_implicit(
        operator, combine):
    neck = aligned_fpn(operator)
    plain = MODELS.build(FPN_CFG).eval()
    plain.load_state_dict(neck.state_dict(), strict=False)
    with torch.no_grad():
        expected, actual = plain(inputs()), neck(inputs())
    assert isinstance(actual, tuple) and len(actual) == 2
    for implicit, e, a in zip(neck.implicit_alignment, expected, actual):
        g = implicit.value().view(1, -1, 1, 1)
        torch.testing.assert_close(a, combine(e, g))


def test_concat_alignment_appends_its_own_channels():
    neck = mix_into(MODELS.build(FPN_CFG), FeatureAlignmentMixin)
    implicit_cfg = dict(channels=3)
    attach_alignment(neck, [6, 6], 'concat', implicit_cfg)
    assert implicit_cfg == dict(channels=3)  # not consumed
    assert all(isinstance(i, ImplicitC) for i in neck.implicit_alignment)
    assert [out.shape[1] for out in neck(inputs())] == [9, 9]


def test_channels_for_an_operator_other_than_concat_must_match_the_levels():
    neck = mix_into(MODELS.build(FPN_CFG), FeatureAlignmentMixin)
    with pytest.raises(ValueError, match='only concat sets its own channel'):
        attach_alignment(neck, [6, 6], 'add', dict(channels=3))
    attach_alignment(neck, [6, 6], 'add', dict(channels=6))  # the same: ok
    assert all(isinstance(i, ImplicitA) for i in neck.implicit_alignment)


def test_a_module_returning_a_single_tensor_gets_the_first_implicit():
    torch.manual_seed(0)
    conv = mix_into(nn.Conv2d(3, 4, 1), FeatureAlignmentMixin)
    attach_alignment(conv, [4], 'add', {})
    randomise_implicits(conv)
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        expected = nn.functional.conv2d(x, conv.weight, conv.bias) + \
            conv.implicit_alignment[0].value().view(1, 4, 1, 1)
        torch.testing.assert_close(conv(x), expected)


def test_a_level_count_other_than_built_for_names_the_wrapper_options():
    neck = mix_into(MODELS.build(FPN_CFG), FeatureAlignmentMixin)
    attach_alignment(neck, [6, 6, 6], 'add', {})
    with pytest.raises(ValueError) as error:
        neck(inputs())
    message = str(error.value)
    assert 'built for 3 output levels but returned 2' in message
    assert 'alignment_levels' in message and 'alignment_channels' in message


def test_the_sites_name_each_level_and_skip_stripped_ones():
    neck = aligned_fpn()
    sites = neck.implicit_sites()
    assert [(s.name, s.role, s.target, s.index) for s in sites
            ] == [(f'{ALIGNMENT_ATTRIBUTE}.{level}', ALIGNMENT, '', level)
                  for level in range(2)]
    assert sites[1].implicit is neck.implicit_alignment[1]
    neck.fold_implicit()
    neck.strip_folded_implicit()
    assert neck.implicit_sites() == []


def test_folding_the_levels_keeps_the_outputs_and_stripping_leaves_identity():
    neck = aligned_fpn()
    with torch.no_grad():
        expected = neck(inputs())
        sites = neck.fold_implicit()
        assert [(s.name, s.folded, s.how) for s in sites
                ] == [(f'{ALIGNMENT_ATTRIBUTE}.{level}', True, FOLDED_HOW)
                      for level in range(2)]
        # folded twice: nothing more to fold, nothing reported
        assert neck.fold_implicit() == []
        for e, a in zip(expected, neck(inputs())):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
        neck.strip_folded_implicit()
        assert all(isinstance(m, nn.Identity) for m in neck.implicit_alignment)
        for e, a in zip(expected, neck(inputs())):
            torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)


def test_a_module_without_folding_rule_keeps_its_alignment():
    conv = mix_into(nn.Conv2d(3, 4, 1), FeatureAlignmentMixin)
    attach_alignment(conv, [4], 'add', {})
    sites = conv.fold_implicit()
    assert len(sites) == 1 and not sites[0].folded
    assert sites[0].how == 'no folding rule for the outputs of Conv2d'
    assert not conv.implicit_alignment[0].folded


def test_a_module_without_alignment_runs_as_before_and_folds_nothing():
    torch.manual_seed(0)
    neck = mix_into(MODELS.build(FPN_CFG), FeatureAlignmentMixin)
    plain = MODELS.build(FPN_CFG)
    plain.load_state_dict(neck.state_dict())
    with torch.no_grad():
        for e, a in zip(plain(inputs()), neck(inputs())):
            assert torch.equal(a, e)
    assert neck.fold_implicit() == []


def output_conv(act_cfg=None):
    torch.manual_seed(0)
    conv = ConvModule(4, 6, 3, padding=1, act_cfg=act_cfg)
    attach_output_conv_alignment(conv, 'multiply', {})
    randomise_implicits(conv)
    return conv.eval()


def test_an_output_conv_alignment_combines_the_conv_output():
    conv = output_conv()
    assert isinstance(conv, ConvModule)
    assert isinstance(conv, OutputConvAlignmentMixin)
    assert isinstance(conv.implicit_alignment, ImplicitM)
    assert conv.implicit_alignment.channels == 6
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        expected = conv.conv(x) * conv.implicit_alignment.value().view(
            1, 6, 1, 1)
        torch.testing.assert_close(conv(x), expected)
    [site] = conv.implicit_sites()
    assert (site.name, site.role, site.target,
            site.index) == (ALIGNMENT_ATTRIBUTE, ALIGNMENT, '', None)


def test_an_output_conv_folds_and_strips_back_to_a_plain_conv_module():
    conv = output_conv()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        expected = conv(x)
        [site] = conv.fold_implicit()
        assert site.folded and site.how == FOLDED_HOW
        assert conv.fold_implicit() == []
        conv.strip_folded_implicit()
        assert type(conv) is ConvModule
        assert not any(ALIGNMENT_ATTRIBUTE in k for k in conv.state_dict())
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)


def test_an_output_conv_with_an_activation_keeps_its_alignment():
    conv = output_conv(act_cfg=dict(type='ReLU'))
    [site] = conv.fold_implicit()
    assert not site.folded and 'activation' in site.how
    conv.strip_folded_implicit()
    # kept: still there, still aligning
    assert isinstance(conv, OutputConvAlignmentMixin)
    assert isinstance(conv.implicit_alignment, ImplicitM)


def test_an_aligned_neck_stays_an_instance_of_its_type():
    neck = aligned_fpn()
    assert isinstance(neck, FPN) and isinstance(neck, FeatureAlignmentMixin)
