# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORBackbone on a tiny ResNet: the wrapped backbone's keys are kept,
one implicit per output level is added and aligns that level, and none of
them folds (a backbone has no folding rule)."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from torch import nn

from mmdet_yolor.deploy import fold_implicit
from mmdet_yolor.errors import InputError
from mmdet_yolor.models.backbones.yolor_backbone import (BACKBONE_PROBE_SIZE,
                                                         backbone_probe_input)

from yolor_testing import randomise_implicits

RESNET = dict(type='ResNet', depth=18, base_channels=4, init_cfg=None)
CHANNELS = [4, 8, 16, 32]  # ResNet-18's out channels per stage, 4 stem


def build(**kwargs):
    torch.manual_seed(0)
    backbone = MODELS.build(
        dict(type='YOLORBackbone', backbone=RESNET, **kwargs))
    randomise_implicits(backbone)
    backbone.eval()  # ResNet's train() returns None
    return backbone


def plain_resnet(**kwargs):
    resnet = MODELS.build(dict(RESNET, **kwargs))
    resnet.eval()
    return resnet


def image():
    torch.manual_seed(1)
    return torch.randn(1, 3, 32, 32)


def test_the_wrapped_backbone_keeps_its_keys_and_adds_one_implicit_a_level():
    backbone = build()
    assert isinstance(backbone, ResNet)
    assert type(backbone).__name__ == 'YOLORResNet'
    plain_keys = set(plain_resnet().state_dict())
    added = set(backbone.state_dict()) - plain_keys
    assert plain_keys <= set(backbone.state_dict())
    assert added == {
        f'implicit_alignment.{level}.implicit'
        for level in range(4)
    }
    assert [i.channels for i in backbone.implicit_alignment] == CHANNELS


def test_a_baseline_checkpoint_loads_with_only_the_implicits_missing():
    missing, unexpected = build().load_state_dict(
        plain_resnet().state_dict(), strict=False)
    assert not unexpected
    assert sorted(missing) == [
        f'implicit_alignment.{level}.implicit' for level in range(4)
    ]


def test_every_output_level_is_aligned_by_its_implicit():
    backbone = build()
    plain = plain_resnet()
    plain.load_state_dict(backbone.state_dict(), strict=False)
    with torch.no_grad():
        expected, actual = plain(image()), backbone(image())
    assert len(actual) == 4
    for implicit, e, a in zip(backbone.implicit_alignment, expected, actual):
        torch.testing.assert_close(a, e + implicit.value().view(1, -1, 1, 1))


def test_backbone_keys_given_beside_the_config_reach_the_backbone():
    backbone = build(out_indices=(1, 3))
    assert [i.channels for i in backbone.implicit_alignment] == [8, 32]
    assert [o.shape[1] for o in backbone(image())] == [8, 32]


def test_multiply_at_identity_computes_the_plain_backbone():
    backbone = MODELS.build(
        dict(
            type='YOLORBackbone',
            backbone=RESNET,
            operator='multiply',
            implicit_cfg=dict(init='identity')))
    backbone.eval()
    plain = plain_resnet()
    plain.load_state_dict(backbone.state_dict(), strict=False)
    with torch.no_grad():
        for e, a in zip(plain(image()), backbone(image())):
            assert torch.equal(a, e)


class SmallImagesOnly(nn.Module):
    """A backbone that refuses the probe image (larger than 64 pixels)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        if x.shape[-1] > 64:
            raise ValueError('images up to 64 pixels')
        return (self.conv(x), self.conv(x))


def test_given_levels_and_channels_skip_the_probe():
    backbone = MODELS.build(
        dict(
            type='YOLORBackbone',
            backbone=dict(type=SmallImagesOnly),
            alignment_levels=2,
            alignment_channels=4))
    assert [i.channels for i in backbone.implicit_alignment] == [4, 4]
    assert len(backbone(torch.zeros(1, 3, 8, 8))) == 2


def test_the_probe_image_has_the_channels_of_the_first_conv():
    probe = backbone_probe_input(plain_resnet(in_channels=5))
    assert tuple(probe.shape) == (1, 5, BACKBONE_PROBE_SIZE,
                                  BACKBONE_PROBE_SIZE)


def test_an_unprobeable_backbone_names_the_options_to_pass():
    with pytest.raises(InputError) as error:
        MODELS.build(
            dict(type='YOLORBackbone', backbone=dict(type=SmallImagesOnly)))
    message = str(error.value)
    assert message.startswith('YOLORBackbone could not tell the output '
                              'levels of SmallImagesOnly')
    assert 'images up to 64 pixels' in message
    assert 'alignment_levels=... and alignment_channels=...' in message


def test_the_folding_report_keeps_every_backbone_level():
    backbone = build()
    with torch.no_grad():
        expected = backbone(image())
    report = fold_implicit(backbone)
    assert not report.complete
    assert [(s.name, s.folded) for s in report.sites
            ] == [(f'implicit_alignment.{level}', False) for level in range(4)]
    assert all(s.how == 'no folding rule for the outputs of ResNet'
               for s in report.sites)
    # nothing changed
    with torch.no_grad():
        for e, a in zip(expected, backbone(image())):
            assert torch.equal(a, e)
