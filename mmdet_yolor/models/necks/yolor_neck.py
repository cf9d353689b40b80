# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORNeck: implicit feature alignment on every output level of a neck."""
from typing import List, Optional, Tuple

from mmdet.registry import MODELS
from torch import Tensor, nn

from ..layers import BaseImplicit, build_implicit
from ..wrapping import build_with_mixin, resolve_type

PLACEMENTS = ('outputs', 'output_convs')

# For placement='output_convs': the attribute holding the convs that produce
# a neck type's output levels, looked up along the class hierarchy.
NECK_OUTPUT_CONVS = {
    'FPN': 'fpn_convs',
}


def find_output_convs(neck_type: type) -> Optional[str]:
    """Return the :data:`NECK_OUTPUT_CONVS` entry of ``neck_type`` or of its
    nearest listed base class."""
    for cls in neck_type.__mro__:
        if cls.__name__ in NECK_OUTPUT_CONVS:
            return NECK_OUTPUT_CONVS[cls.__name__]
    return None


def _align_output(conv: nn.Module, inputs: tuple, output: Tensor) -> Tensor:
    """Forward hook of an output conv: ``y -> implicit_alignment(y)``."""
    return conv.implicit_alignment(output)


class YOLORNeckMixin:
    """Mixed into a neck type by :func:`build_yolor_neck`; see there."""

    def implicit_modules(self) -> List[BaseImplicit]:
        """The implicit layers of the feature alignment (those not folded
        away by ``mmdet_yolor.deploy``)."""
        if self.yolor_placement == 'outputs':
            candidates = list(self.implicit_alignment)
        else:
            candidates = [
                getattr(conv, 'implicit_alignment', None)
                for conv in getattr(self, find_output_convs(type(self)))
            ]
        return [m for m in candidates if isinstance(m, BaseImplicit)]

    def init_weights(self) -> None:
        # as YOLORHead: the implicits keep their own initialisation
        super().init_weights()
        for implicit in self.implicit_modules():
            implicit.reset_parameters()

    def forward(self, *args, **kwargs) -> Tuple[Tensor, ...]:
        outs = super().forward(*args, **kwargs)
        if self.yolor_placement == 'output_convs':
            return outs  # the output convs aligned their outputs already
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
                     placement: str = 'outputs',
                     num_outs: Optional[int] = None,
                     out_channels: Optional[int] = None) -> nn.Module:
    """Build ``neck`` with YOLOR implicit feature alignment; registered in
    ``MODELS`` as ``'YOLORNeck'``.

    Every output level ``i`` of the neck becomes ``implicit_i(out_i)``, one
    implicit layer per level (the paper's feature alignment adds one vector
    per FPN level). The result is an instance of ``YOLOR<NeckType>``, a
    subclass of the configured neck type: every state-dict key of the neck is
    kept, the implicits add ``implicit_alignment.<level>.*``.

    With ``placement='output_convs'`` the implicits sit instead on the
    outputs of the convs that produce the levels (FPN's ``fpn_convs``, see
    :data:`NECK_OUTPUT_CONVS`), before the neck derives extra levels from
    them: FPN's pooled level then inherits the alignment of its source, and
    every implicit folds exactly into its conv's bias at inference.

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
        placement (str): ``'outputs'`` (every output level, any neck) or
            ``'output_convs'`` (on the output convs, for the neck types in
            :data:`NECK_OUTPUT_CONVS`). Defaults to ``'outputs'``.
        num_outs (int, optional): Number of output levels. Defaults to the
            neck's ``num_outs`` attribute (FPN, PAFPN, ChannelMapper...).
        out_channels (int, optional): Channels of every output level.
            Defaults to the neck's ``out_channels`` attribute.

    Returns:
        nn.Module: The neck, of type ``YOLOR<NeckType>``.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f'YOLORNeck: placement must be one of {PLACEMENTS}, '
                         f'got {placement!r}')
    if placement == 'output_convs':
        if operator == 'concat':
            raise ValueError("YOLORNeck: placement='output_convs' cannot "
                             "concat: the neck's own convs consume them")
        convs_name = find_output_convs(resolve_type(neck, 'YOLORNeck'))
        if convs_name is None:
            raise TypeError(
                f"YOLORNeck: placement='output_convs' does not know the "
                f"output convs of {neck['type']}; supported: "
                f"{', '.join(NECK_OUTPUT_CONVS)} (add it to NECK_OUTPUT_CONVS "
                f"in {__name__.replace('.', '/')}.py) or use "
                f"placement='outputs'.")
    module = build_with_mixin(neck, YOLORNeckMixin, 'YOLORNeck')
    module.yolor_placement = placement
    implicit_cfg = dict(implicit_cfg or {})
    if placement == 'output_convs':
        for conv in getattr(module, convs_name):
            conv.implicit_alignment = build_implicit(
                operator, conv.out_channels, dim=1, **implicit_cfg)
            conv.register_forward_hook(_align_output)
        return module

    num_outs = num_outs or getattr(module, 'num_outs', None)
    out_channels = out_channels or getattr(module, 'out_channels', None)
    if not isinstance(num_outs, int) or not isinstance(out_channels, int):
        raise ValueError(
            f'YOLORNeck cannot tell the number of output levels and channels '
            f'of {neck["type"]} (no integer num_outs/out_channels attribute); '
            f'pass num_outs=... and out_channels=... to YOLORNeck.')
    channels = implicit_cfg.pop('channels', out_channels)
    if operator != 'concat' and channels != out_channels:
        raise ValueError(f'YOLORNeck: implicit_cfg channels={channels} must '
                         f'equal the neck out_channels={out_channels} for '
                         f'operator {operator!r}')
    module.implicit_alignment = nn.ModuleList(
        build_implicit(operator, channels, dim=1, **implicit_cfg)
        for _ in range(num_outs))
    return module
