# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORNeck: implicit feature alignment on every output level of a neck."""
from typing import Optional, Tuple

from torch import Tensor, nn

from mmdet.registry import MODELS
from ..layers import build_implicit
from ..wrapping import build_with_mixin


class YOLORNeckMixin:
    """Mixed into a neck type by :func:`build_yolor_neck`; see there."""

    def forward(self, *args, **kwargs) -> Tuple[Tensor, ...]:
        outs = super().forward(*args, **kwargs)
        if len(outs) != len(self.implicit_alignment):
            raise ValueError(
                f'{type(self).__name__} was built for'
                f' {len(self.implicit_alignment)} output levels but the '
                f'neck returned {len(outs)}; set num_outs of YOLORNeck.')
        return tuple(
            implicit(out)
            for implicit, out in zip(self.implicit_alignment, outs))


@MODELS.register_module(name='YOLORNeck')
def build_yolor_neck(neck: dict,
                     operator: str = 'add',
                     implicit_cfg: Optional[dict] = None,
                     num_outs: Optional[int] = None,
                     out_channels: Optional[int] = None) -> nn.Module:
    """Build ``neck`` with YOLOR implicit feature alignment; registered in
    ``MODELS`` as ``'YOLORNeck'``.

    Every output level ``i`` of the neck becomes ``implicit_i(out_i)``, one
    implicit layer per level (the paper's feature alignment adds one vector
    per FPN level). The result is an instance of ``YOLOR<NeckType>``, a
    subclass of the configured neck type: every state-dict key of the neck is
    kept, the implicits add ``implicit_alignment.<level>.*``.

    Example:
        >>> neck = dict(
        ...     type='YOLORNeck',
        ...     neck=dict(type='FPN', in_channels=[256, 512, 1024, 2048],
        ...               out_channels=256, num_outs=5),
        ...     operator='add')

    Args:
        neck (dict): Config of the neck to wrap. Its outputs must be a
            sequence of ``(N, C, H, W)`` tensors.
        operator (str): ``'add'`` (the paper's feature alignment),
            ``'multiply'`` or ``'concat'``. ``'concat'`` appends
            ``implicit_cfg['channels']`` (default ``out_channels``) constant
            channels, so the heads' ``in_channels`` must grow by as much.
            Defaults to ``'add'``.
        implicit_cfg (dict, optional): Keyword arguments of the implicit
            layers (``form``, ``init``, ``std``, ``prior_dim``,
            ``num_atoms``, and ``channels`` for concat; see
            :class:`BaseImplicit`). Defaults to the paper's vector form.
        num_outs (int, optional): Number of output levels. Defaults to the
            neck's ``num_outs`` attribute (FPN, PAFPN, ChannelMapper...).
        out_channels (int, optional): Channels of every output level.
            Defaults to the neck's ``out_channels`` attribute.

    Returns:
        nn.Module: The neck, of type ``YOLOR<NeckType>``.
    """
    module = build_with_mixin(neck, YOLORNeckMixin, 'YOLORNeck')
    num_outs = num_outs or getattr(module, 'num_outs', None)
    out_channels = out_channels or getattr(module, 'out_channels', None)
    if not isinstance(num_outs, int) or not isinstance(out_channels, int):
        raise ValueError(
            f'YOLORNeck cannot tell the number of output levels and channels '
            f'of {neck["type"]} (no integer num_outs/out_channels attribute); '
            f'pass num_outs=... and out_channels=... to YOLORNeck.')
    implicit_cfg = dict(implicit_cfg or {})
    channels = implicit_cfg.pop('channels', out_channels)
    if operator != 'concat' and channels != out_channels:
        raise ValueError(f'YOLORNeck: implicit_cfg channels={channels} must '
                         f'equal the neck out_channels={out_channels} for '
                         f'operator {operator!r}')
    module.implicit_alignment = nn.ModuleList(
        build_implicit(operator, channels, dim=1, **implicit_cfg)
        for _ in range(num_outs))
    return module
