# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch
from mmdet.models.necks import FPN
from mmdet.registry import MODELS

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


def test_num_outs_mismatch_is_reported():
    yolor = build(num_outs=3)
    with pytest.raises(
            ValueError,
            match='built for 3 output levels but the '
            'neck returned 4; set num_outs of YOLORNeck'):
        yolor(neck_inputs())


def test_neck_without_attributes_needs_explicit_sizes():
    cfg = dict(
        type='YOLORNeck',
        neck=dict(
            type='DilatedEncoder',
            in_channels=8,
            out_channels=8,
            block_mid_channels=4,
            num_residual_blocks=1,
            block_dilations=[1]))
    with pytest.raises(
            ValueError,
            match='pass num_outs=... and '
            'out_channels=... to YOLORNeck'):
        MODELS.build(cfg)
    neck = MODELS.build(dict(cfg, num_outs=1, out_channels=8))
    assert neck([torch.randn(1, 8, 4, 4)])[0].shape == (1, 8, 4, 4)


def test_channel_mismatch_is_refused():
    with pytest.raises(ValueError, match='must equal the neck out_channels'):
        build(implicit_cfg=dict(channels=4))


def test_output_convs_placement_aligns_before_extra_levels():
    yolor = build(placement='output_convs', implicit_cfg=dict(init='identity'))
    assert not hasattr(yolor, 'implicit_alignment')
    assert len(yolor.implicit_modules()) == len(yolor.fpn_convs) == 4
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
