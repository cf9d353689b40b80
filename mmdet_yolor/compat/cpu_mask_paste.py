# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``cpu_mask_paste``: instance masks paste on the CPU whatever the box.

On the CPU, mmdet 3.3.0's ``FCNMaskHead`` pastes each mask alone and only
over the region around its box (``_do_paste_mask(..., skip_empty=True)``).
For a box that lies wholly outside the image the region is reversed, and
``torch.arange`` raises ``upper bound and lower bound inconsistent with
step sign``; on a GPU, which pastes over the whole image, such a box gets
an empty mask. Heads that do not clip their boxes to the image meet it on
the CPU as soon as one box leaves the image: QueryInst's ``DIIHead``, and
any model early in training. The fix pastes a chunk of boxes whose region
misses the image over the whole image, as the GPU does (an empty mask);
every other chunk is pasted as before.
"""
import functools

import torch
from mmdet.models.roi_heads.mask_heads import fcn_mask_head
from torch import Tensor

from .registry import Fix

PASTE = 'mmdet.models.roi_heads.mask_heads.fcn_mask_head._do_paste_mask'


def region_misses_the_image(boxes: Tensor, img_h: int, img_w: int) -> bool:
    """Whether the region bounding ``boxes`` (``(N, 4)``, x1 y1 x2 y2 in
    pixels) lies wholly outside an image of ``img_h`` x ``img_w``."""
    return bool(boxes[:, 0].min() >= img_w or boxes[:, 1].min() >= img_h
                or boxes[:, 2].max() <= 0 or boxes[:, 3].max() <= 0)


def paste_fails_outside_the_image() -> bool:
    """Whether mmdet's CPU paste raises for a box outside the image."""
    try:
        fcn_mask_head._do_paste_mask(
            torch.ones(1, 1, 2, 2),
            torch.tensor([[20., 20., 30., 30.]]),
            8,
            8,
            skip_empty=True)
    except RuntimeError:
        return True
    return False


def paste_over_the_image_where_the_region_misses() -> None:
    paste = fcn_mask_head._do_paste_mask

    @functools.wraps(paste)
    def paste_anywhere(masks, boxes, img_h, img_w, skip_empty=True):
        if skip_empty and region_misses_the_image(boxes, img_h, img_w):
            skip_empty = False
        return paste(masks, boxes, img_h, img_w, skip_empty=skip_empty)

    fcn_mask_head._do_paste_mask = paste_anywhere


FIX = Fix(
    name='cpu_mask_paste',
    defect="mmdet's CPU mask paste raises for a box outside the image",
    probe=paste_fails_outside_the_image,
    apply=paste_over_the_image_where_the_region_misses,
    private_attributes=(PASTE, ))
