# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Where an FPN's alignment folds: the output convs along the class
hierarchy, the fold into one conv, and which levels an FPN reuses."""
import pytest
import torch
from mmcv.cnn import ConvModule
from mmdet.models.layers import NormedConv2d
from mmdet.models.necks import FPN, PAFPN, ChannelMapper
from mmdet.registry import MODELS
from torch import nn

from mmdet_yolor.models.layers import ImplicitA, ImplicitC, ImplicitM
from mmdet_yolor.models.necks.fpn_folding import (LEVEL_PRODUCERS,
                                                  NECK_OUTPUT_CONVS,
                                                  find_output_convs,
                                                  fold_into_output_conv,
                                                  fpn_level_producers)

from yolor_testing import randomise_implicits


def test_subclasses_of_fpn_find_its_output_convs():
    assert find_output_convs(FPN) == 'fpn_convs'
    assert find_output_convs(PAFPN) == 'fpn_convs'
    assert find_output_convs(ChannelMapper) is None


def test_a_subclass_entry_overrides_the_output_convs_of_its_base(monkeypatch):
    monkeypatch.setitem(NECK_OUTPUT_CONVS, PAFPN, 'pafpn_convs')
    assert find_output_convs(PAFPN) == 'pafpn_convs'
    assert find_output_convs(FPN) == 'fpn_convs'


def implicit(kind, channels=4):
    layer = kind(channels)
    randomise_implicits(layer)
    return layer


@pytest.mark.parametrize('kind, combine', [
    (ImplicitA, lambda y, g: y + g),
    (ImplicitM, lambda y, g: y * g),
])
@pytest.mark.parametrize('wrap', [True, False], ids=['conv_module', 'conv'])
def test_an_alignment_folds_exactly_into_its_output_conv(kind, combine, wrap):
    torch.manual_seed(0)
    conv = ConvModule(
        3, 4, 3, padding=1, act_cfg=None) if wrap else nn.Conv2d(
            3, 4, 3, padding=1)
    alignment = implicit(kind)
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        expected = combine(conv(x), alignment.value().view(1, 4, 1, 1))
        assert fold_into_output_conv(conv, alignment) == ''
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
        # the implicit is the identity from now on, and marked
        assert alignment.folded
        torch.testing.assert_close(alignment(expected), expected)


@pytest.mark.parametrize(
    'conv, reason', [
        (ConvModule(3, 4, 3, norm_cfg=dict(type='BN'),
                    act_cfg=None), 'norm or activation'),
        (ConvModule(3, 4, 3, act_cfg=dict(type='ReLU')), 'norm or activation'),
        (NormedConv2d(3, 4, 3), 'NormedConv2d is not a plain conv'),
    ],
    ids=['norm', 'activation', 'normed_conv'])
def test_an_output_conv_that_cannot_absorb_the_value_is_refused(conv, reason):
    alignment = implicit(ImplicitA)
    before = conv.state_dict()
    assert reason in fold_into_output_conv(conv, alignment)
    assert not alignment.folded
    for key, value in conv.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_concatenation_has_no_layer_to_fold_into():
    why = fold_into_output_conv(nn.Conv2d(3, 4, 1), implicit(ImplicitC, 2))
    assert 'concatenation' in why


def fpn(num_outs, add_extra_convs):
    return MODELS.build(
        dict(
            type='FPN',
            in_channels=[4, 8, 16],
            out_channels=4,
            num_outs=num_outs,
            add_extra_convs=add_extra_convs))


def describe(neck, producers):
    """A conv's level, or the reason a level is kept."""
    return [
        p if isinstance(p, str) else list(neck.fpn_convs).index(p)
        for p in producers
    ]


def test_levels_an_fpn_reuses_or_max_pools_are_kept():
    neck = fpn(4, False)
    assert describe(neck, fpn_level_producers(neck)) == [
        0, 1, 'the FPN derives level 3 from this output',
        'max-pooled level: no conv to fold into'
    ]


def test_extra_convs_on_the_outputs_keep_their_source_levels():
    neck = fpn(5, 'on_output')
    assert describe(neck, fpn_level_producers(neck)) == [
        0, 1, 'the FPN derives level 3 from this output',
        'the FPN derives level 4 from this output', 4
    ]


def test_extra_convs_on_the_inputs_leave_the_last_input_level_foldable():
    neck = fpn(5, 'on_input')
    assert describe(neck, fpn_level_producers(neck)) == [
        0, 1, 2, 'the FPN derives level 4 from this output', 4
    ]


def test_an_fpn_without_extra_levels_folds_every_level():
    neck = fpn(3, False)
    assert describe(neck, fpn_level_producers(neck)) == [0, 1, 2]


def test_the_level_rule_is_keyed_by_the_class_owning_forward():
    # PAFPN overrides FPN's forward: its outputs are not fpn_convs'
    assert LEVEL_PRODUCERS[FPN] is fpn_level_producers
    assert PAFPN not in LEVEL_PRODUCERS
