# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch
from mmdet.models.necks import FPN
from mmdet.registry import MODELS
from torch import nn

from mmdet_yolor.errors import InputError
from mmdet_yolor.models import implicit_layers
from mmdet_yolor.models.necks.alignment import FeatureAlignmentMixin
from mmdet_yolor.models.necks.probe import probe_output_channels
from mmdet_yolor.models.wrapping import mix_into

FPN_CFG = dict(
    type='FPN',
    in_channels=[8, 16, 32],
    out_channels=8,
    num_outs=4,
    add_extra_convs='on_output')


def neck_inputs():
    torch.manual_seed(0)
    return [torch.randn(2, c, s, s) for c, s in zip([8, 16, 32], [16, 8, 4])]


def build(**kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='YOLORNeck', neck=FPN_CFG, **kwargs))


@pytest.mark.parametrize('form', ['vector', 'nn', 'mf'])
def test_add_aligns_every_level(form):
    torch.manual_seed(0)
    plain = MODELS.build(FPN_CFG)
    yolor = build(implicit_cfg=dict(form=form))
    assert isinstance(yolor, FPN) and type(yolor).__name__ == 'YOLORFPN'
    missing, unexpected = yolor.load_state_dict(
        plain.state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == sorted(key for key in yolor.state_dict()
                                     if 'implicit_alignment' in key)
    with torch.no_grad():
        expected = plain(neck_inputs())
        actual = yolor(neck_inputs())
    assert len(actual) == 4 == len(yolor.implicit_alignment)
    for level, (e, a) in enumerate(zip(expected, actual)):
        g = yolor.implicit_alignment[level].representation().view(1, 8, 1, 1)
        torch.testing.assert_close(a, e + g)


def test_levels_have_their_own_implicit():
    yolor = build(implicit_cfg=dict(init='identity'))
    with torch.no_grad():
        yolor.implicit_alignment[1].implicit.fill_(100.)
        outs = yolor(neck_inputs())
    assert outs[1].mean() > 50
    assert all(outs[level].mean().abs() < 50 for level in (0, 2, 3))


def test_multiply_and_concat():
    multiply = build(operator='multiply', implicit_cfg=dict(init='identity'))
    plain = MODELS.build(FPN_CFG)
    multiply.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        for e, a in zip(plain(neck_inputs()), multiply(neck_inputs())):
            assert torch.equal(e, a)
    concat = build(operator='concat', implicit_cfg=dict(channels=3))
    outs = concat(neck_inputs())
    assert [o.shape[1] for o in outs] == [11] * 4


def test_gradients_reach_alignment():
    yolor = build()
    sum(o.sum() for o in yolor(neck_inputs())).backward()
    for implicit in yolor.implicit_alignment:
        assert implicit.implicit.grad.abs().sum() > 0


def test_init_weights_keeps_paper_statistics():
    yolor = build()
    yolor.init_weights()
    values = torch.cat([m.implicit for m in yolor.implicit_alignment])
    assert values.abs().max() < 0.2 and values.std() > 0


def test_levels_that_do_not_match_the_built_ones_are_reported():
    # the FPN returns 4
    yolor = build(alignment_levels=3, alignment_channels=8)
    with pytest.raises(
            ValueError,
            match='built for 3 output levels but returned 4; pass '
            'alignment_levels and alignment_channels'):
        yolor(neck_inputs())


# Necks without num_outs/out_channels attributes, or whose levels differ in
# width: the levels are read from their outputs. (config, input channels and
# sizes, channels of each output level)
NECKS_WITHOUT_ATTRIBUTES = {
    'DilatedEncoder': (dict(
        type='DilatedEncoder',
        in_channels=8,
        out_channels=8,
        block_mid_channels=4,
        num_residual_blocks=1,
        block_dilations=[1]), [(8, 4)], [8]),
    'CSPNeXtPAFPN': (dict(
        type='CSPNeXtPAFPN',
        in_channels=[8, 16, 32],
        out_channels=8,
        num_csp_blocks=1), [(8, 16), (16, 8), (32, 4)], [8, 8, 8]),
    'ChannelMapper': (dict(
        type='ChannelMapper', in_channels=[8, 16], out_channels=8,
        num_outs=3), [(8, 8), (16, 4)], [8, 8, 8]),
    # lists its in_channels deepest first, and its levels differ in width
    'YOLOV3Neck': (dict(
        type='YOLOV3Neck',
        num_scales=3,
        in_channels=[32, 16, 8],
        out_channels=[16, 8, 4]), [(8, 16), (16, 8), (32, 4)], [16, 8, 4]),
    'SSDNeck': (dict(
        type='SSDNeck',
        in_channels=(8, 16),
        out_channels=(8, 16, 8, 8),
        level_strides=(2, 2),
        level_paddings=(1, 1)), [(8, 16), (16, 8)], [8, 16, 8, 8]),
}


@pytest.mark.parametrize('name', NECKS_WITHOUT_ATTRIBUTES)
def test_levels_and_channels_come_from_the_outputs(name):
    cfg, inputs, channels = NECKS_WITHOUT_ATTRIBUTES[name]
    torch.manual_seed(0)
    plain = MODELS.build(cfg)
    yolor = MODELS.build(dict(type='YOLORNeck', neck=cfg))
    assert [m.channels for m in yolor.implicit_alignment] == channels
    yolor.load_state_dict(plain.state_dict(), strict=False)
    plain.eval(), yolor.eval()
    features = [torch.randn(2, c, s, s) for c, s in inputs]
    with torch.no_grad():
        expected, actual = plain(features), yolor(features)
    assert len(actual) == len(channels)
    for level, (e, a) in enumerate(zip(expected, actual)):
        g = yolor.implicit_alignment[level].value().view(1, -1, 1, 1)
        torch.testing.assert_close(a, e + g)


def test_probing_has_no_side_effects():
    cfg = NECKS_WITHOUT_ATTRIBUTES['CSPNeXtPAFPN'][0]
    neck = MODELS.build(cfg)
    state = {k: v.clone() for k, v in neck.state_dict().items()}
    rng = torch.get_rng_state()
    inputs = [[torch.zeros(1, c, s, s) for c, s in [(8, 8), (16, 4), (32, 2)]]]
    assert probe_output_channels(
        mix_into(neck, FeatureAlignmentMixin), inputs) == [8, 8, 8]
    assert torch.equal(torch.get_rng_state(), rng)  # draws nothing
    for key, value in neck.state_dict().items():  # BN statistics kept
        assert torch.equal(value, state[key]), key
    assert all(m.training for m in neck.modules())


def test_neck_list_is_aligned_after_the_last_neck():
    fpn = dict(FPN_CFG, num_outs=4)
    necks = [fpn, dict(type='BFP', in_channels=8, num_levels=4)]
    yolor = MODELS.build(dict(type='YOLORNeck', neck=necks))
    plain = MODELS.build(necks)
    assert type(yolor).__name__ == 'YOLORNeckSequence'
    assert set(plain.state_dict()) < set(yolor.state_dict())
    assert len(yolor(neck_inputs())) == len(yolor.implicit_alignment) == 4


@MODELS.register_module(force=True)
class NamedLevelsNeck(nn.Module):
    """A neck reading a dict of named levels, which no probe can guess."""

    def __init__(self, in_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels[0], 4, 1)

    def forward(self, levels):
        return (self.conv(levels['p3']), )


def test_neck_the_probe_cannot_run_needs_explicit_sizes():
    cfg = dict(
        type='YOLORNeck', neck=dict(type='NamedLevelsNeck', in_channels=[8]))
    with pytest.raises(
            InputError,
            match='YOLORNeck could not tell the output levels of '
            'NamedLevelsNeck: running it on probe inputs built from its '
            r'in_channels failed \(TypeError: .*\). Pass alignment_levels=... '
            'and alignment_channels=... to YOLORNeck.'):
        MODELS.build(cfg)
    neck = MODELS.build(dict(cfg, alignment_levels=1, alignment_channels=4))
    assert neck(dict(p3=torch.randn(1, 8, 4, 4)))[0].shape == (1, 4, 4, 4)


def test_explicit_sizes_skip_the_probe():
    neck = MODELS.build(
        dict(
            type='YOLORNeck',
            neck=NECKS_WITHOUT_ATTRIBUTES['YOLOV3Neck'][0],
            alignment_channels=[16, 8, 4]))
    assert [m.channels for m in neck.implicit_alignment] == [16, 8, 4]


def test_other_keys_reach_the_wrapped_neck():
    # as mmdet users set model.neck.out_channels=...: the FPN gets it
    neck = build(out_channels=16, num_outs=3, init_cfg=None)
    assert neck.out_channels == 16 and neck.num_outs == 3
    assert [m.channels for m in neck.implicit_alignment] == [16] * 3
    assert neck.init_cfg is None


def test_options_the_neck_does_not_take_are_refused_by_the_neck():
    cfg = dict(
        type='YOLORNeck',
        neck=dict(type='NamedLevelsNeck', in_channels=[8]),
        num_outs=1)
    with pytest.raises(TypeError, match='num_outs'):
        MODELS.build(cfg)


def test_channel_mismatch_is_refused():
    with pytest.raises(
            ValueError, match=r'channels=4 must equal the output channels'):
        build(implicit_cfg=dict(channels=4))


def test_output_convs_placement_aligns_before_extra_levels():
    yolor = build(placement='output_convs', implicit_cfg=dict(init='identity'))
    assert not hasattr(yolor, 'implicit_alignment')
    assert len(implicit_layers(yolor)) == len(yolor.fpn_convs) == 4
    with torch.no_grad():
        before = yolor(neck_inputs())
        # the last backbone level feeds the extra conv of level 3
        yolor.fpn_convs[2].implicit_alignment.implicit.fill_(5.)
        after = yolor(neck_inputs())
    torch.testing.assert_close(after[2], before[2] + 5)
    assert not torch.allclose(after[3], before[3])
    torch.testing.assert_close(after[0], before[0])


def test_output_convs_placement_refusals():
    with pytest.raises(ValueError, match="cannot concat"):
        build(placement='output_convs', operator='concat')
    with pytest.raises(
            ValueError,
            match=r"placement='output_convs'\): implicit_cfg has "
            "channels=8.*remove 'channels'"):
        build(placement='output_convs', implicit_cfg=dict(channels=8))
    with pytest.raises(
            TypeError,
            match="does not know the output convs of "
            'ChannelMapper.*NECK_OUTPUT_CONVS'):
        MODELS.build(
            dict(
                type='YOLORNeck',
                placement='output_convs',
                neck=dict(
                    type='ChannelMapper', in_channels=[8], out_channels=8)))
    with pytest.raises(ValueError, match='placement must be one of'):
        build(placement='inputs')


@pytest.mark.parametrize('neck_type', ['FPN', 'PAFPN'])
def test_folding_follows_the_forward_the_neck_runs(neck_type):
    """PAFPN subclasses FPN but adds a bottom-up path after ``fpn_convs``:
    folding its alignment into them would be wrong, so it is kept."""
    yolor = MODELS.build(
        dict(
            type='YOLORNeck',
            neck=dict(FPN_CFG, type=neck_type),
            implicit_cfg=dict(std=0.5)))
    yolor.eval()
    with torch.no_grad():
        expected = yolor(neck_inputs())
        sites = yolor.fold_implicit()
        actual = yolor(neck_inputs())
    for e, a in zip(expected, actual):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5)
    folded = [site.folded for site in sites]
    if neck_type == 'FPN':
        # the levels whose conv output nothing else reads
        assert folded == [True, True, False, True]
    else:
        assert folded == [False] * 4
        assert sites[0].how == 'no folding rule for the outputs of PAFPN'
