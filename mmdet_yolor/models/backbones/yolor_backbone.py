# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORBackbone: implicit feature alignment for detectors without a neck.

CornerNet, MaskFormer, Mask2Former, TridentNet and the C4 two-stage
detectors feed their heads with the backbone's outputs directly; feature
alignment then goes on those outputs, one implicit per level, exactly as
``YOLORNeck`` does on a neck's.
"""
from typing import List, Optional, Union

import torch
from mmdet.registry import MODELS
from torch import nn
from torch.nn.modules.conv import _ConvNd

from ..necks.alignment import FeatureAlignmentMixin, attach_alignment
from ..necks.probe import output_level_channels
from ..wrapping import YOLORWrapper, build_with_mixin, merged_config

# Side of the probe image, in pixels: a multiple of the largest total stride
# of mmdet's backbones (HourglassNet: 128).
BACKBONE_PROBE_SIZE = 256


def backbone_probe_input(backbone: nn.Module) -> torch.Tensor:
    """A blank image with the channels of the backbone's first conv."""
    first_conv = next(
        (m for m in backbone.modules() if isinstance(m, _ConvNd)), None)
    channels = first_conv.in_channels if first_conv is not None else 3
    return torch.zeros(1, channels, BACKBONE_PROBE_SIZE, BACKBONE_PROBE_SIZE)


@MODELS.register_module()
class YOLORBackbone(FeatureAlignmentMixin, YOLORWrapper):
    """A backbone with YOLOR implicit feature alignment on each of its
    outputs; ``type='YOLORBackbone'``.

    The counterpart of ``YOLORNeck`` for detectors without a neck: building
    it builds the backbone and returns it as a ``YOLOR<BackboneType>``
    keeping every state-dict key, plus ``implicit_alignment.<level>.*``.
    The levels and channels are read from the backbone's outputs on a blank
    probe image.

    Example:
        >>> backbone = dict(
        ...     type='YOLORBackbone',
        ...     backbone=dict(type='ResNet', depth=50, out_indices=(3, )))

    Args:
        backbone (dict): Config of the backbone to wrap.
        operator (str): ``'add'``, ``'multiply'`` or ``'concat'``, as in
            ``YOLORNeck``. Defaults to ``'add'``.
        implicit_cfg (dict, optional): Keyword arguments of the implicit
            layers (see ``YOLORNeck``).
        alignment_levels (int, optional): Number of output levels, with an
            int ``alignment_channels``: skips the probe run.
        alignment_channels (int | list[int], optional): Channels of every
            output level, or of each: skips the probe run.
        **backbone_options: Keys of the backbone, merged into ``backbone``
            as mmengine merges configs (``model.backbone.init_cfg=None``
            reaches the backbone).
    """
    wrapped_key = 'backbone'

    def __new__(cls,
                backbone: dict,
                operator: str = 'add',
                implicit_cfg: Optional[dict] = None,
                alignment_levels: Optional[int] = None,
                alignment_channels: Union[int, List[int], None] = None,
                **backbone_options) -> nn.Module:
        backbone = merged_config(backbone, backbone_options, cls.__name__)
        module = build_with_mixin(backbone, cls, cls.__name__)
        channels = output_level_channels(cls.__name__, module,
                                         [backbone_probe_input(module)],
                                         alignment_levels, alignment_channels)
        attach_alignment(module, channels, operator, dict(implicit_cfg or {}))
        return module
