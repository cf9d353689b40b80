# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``cpu_mask_paste``: masks paste on the CPU for boxes outside the
image."""
import pytest
import torch
from mmdet.models.roi_heads.mask_heads import fcn_mask_head
from mmdet.registry import MODELS
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmdet_yolor.compat import applied_fixes
from mmdet_yolor.compat.cpu_mask_paste import (paste_fails_outside_the_image,
                                               region_misses_the_image)


def test_the_probe_finds_the_failing_paste(monkeypatch):
    assert 'cpu_mask_paste' in applied_fixes()
    assert not paste_fails_outside_the_image()  # repaired
    stock = fcn_mask_head._do_paste_mask.__wrapped__
    monkeypatch.setattr(fcn_mask_head, '_do_paste_mask', stock)
    assert paste_fails_outside_the_image()  # mmdet 3.3.0's defect
    with pytest.raises(RuntimeError, match='inconsistent with step sign'):
        stock(
            torch.ones(1, 1, 2, 2),
            torch.tensor([[20., 20., 30., 30.]]),
            8,
            8,
            skip_empty=True)


@pytest.mark.parametrize(
    'box,misses',
    [
        ([2., 2., 6., 6.], False),
        ([-4., -4., 1., 1.], False),  # overlaps a corner
        ([8., 0., 12., 4.], True),  # right of the image
        ([0., 9., 4., 12.], True),  # below it
        ([-6., 0., 0., 4.], True),  # left of it
        ([0., -6., 4., -1.], True),  # above it
    ])
def test_region_misses_the_image(box, misses):
    assert region_misses_the_image(torch.tensor([box]), 8, 8) is misses
    # a chunk's region bounds all its boxes
    both = torch.tensor([box, [2., 2., 6., 6.]])
    assert not region_misses_the_image(both, 8, 8)


def test_mask_head_pastes_a_box_outside_the_image_as_an_empty_mask():
    """Stock mmdet 3.3.0 raises here on the CPU (``upper bound and lower
    bound inconsistent with step sign``); a GPU pastes an empty mask."""
    head = MODELS.build(
        dict(
            type='FCNMaskHead',
            num_convs=1,
            in_channels=4,
            conv_out_channels=4,
            num_classes=2))
    torch.manual_seed(0)
    mask_preds = (torch.randn(2, 2, 28, 28), )
    results = InstanceData(
        bboxes=torch.tensor([[10., 10., 40., 40.], [70., 5., 90., 30.]]),
        labels=torch.tensor([0, 1]),
        scores=torch.tensor([0.9, 0.8]))
    masks = head.predict_by_feat(
        mask_preds,
        [results],
        [dict(img_shape=(48, 64), ori_shape=(48, 64), scale_factor=(1., 1.))],
        ConfigDict(mask_thr_binary=-1.0),  # every pasted pixel set
        rescale=False)[0].masks
    assert masks.shape == (2, 48, 64)
    assert masks[0, 10:40, 10:40].all() and not masks[0, :9].any()
    assert not masks[1].any()  # outside the image: empty, as on a GPU
