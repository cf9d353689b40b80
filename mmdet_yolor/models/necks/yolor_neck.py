# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORNeck: implicit feature alignment on every output level of a neck.

Building ``YOLORNeck`` builds the neck and mixes in the feature alignment of
:mod:`.alignment`, one implicit per output level, the levels read by a
probe run (:mod:`.probe`). With ``placement='output_convs'`` the implicits
sit instead on the convs that produce FPN's levels, where every one folds
into a conv bias at inference (:mod:`.fpn_folding`).
"""
from typing import List, Optional, Union

from mmdet.registry import MODELS
from mmengine.model import Sequential
from torch import nn

from ..eager_frames import eager_at_top_level
from ..wrapping import (YOLORWrapper, build_with_mixin, merged_config,
                        mix_into, resolve_type)
from .alignment import (ALIGNMENT_ATTRIBUTE, FeatureAlignmentMixin,
                        attach_alignment, attach_output_conv_alignment)
from .fpn_folding import NECK_OUTPUT_CONVS, find_output_convs
from .probe import neck_probe_inputs, output_level_channels

PLACEMENTS = ('outputs', 'output_convs')


class NeckSequence(Sequential):
    """A list of necks applied in turn, with the keys mmdet gives a neck
    list (``0.*``, ``1.*``...). Unlike ``Sequential`` it skips the
    alignment it carries as a child; run eagerly where dynamo meets it on
    its own, as ``Sequential.forward`` is (a graph break inside a neck:
    DyHead's deformable conv)."""

    @eager_at_top_level
    def forward(self, x):
        for name, module in self._modules.items():
            if name != ALIGNMENT_ATTRIBUTE:
                x = module(x)
        return x


@MODELS.register_module()
class YOLORNeck(FeatureAlignmentMixin, YOLORWrapper):
    """A neck with YOLOR implicit feature alignment; ``type='YOLORNeck'``.

    Every output level ``i`` of the neck becomes ``implicit_i(out_i)``, one
    implicit layer per level (the paper's feature alignment adds one vector
    per FPN level). Building it builds the neck and returns it as a
    ``YOLOR<NeckType>``, an instance of this class and of the neck's type:
    every state-dict key of the neck is kept, the implicits add
    ``implicit_alignment.<level>.*``. The levels and their channels are read
    from the neck's outputs on a probe input built from its ``in_channels``
    (``alignment_levels``/``alignment_channels`` skip the probe).

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
        neck (dict | list[dict]): Config of the neck to wrap, or a list of
            necks applied in turn (as mmdet's ``neck=[FPN, DyHead]``); the
            alignment goes on the outputs of the last. Its outputs must be
            ``(N, C, ...)`` tensors (a sequence of them or one).
        operator (str): ``'add'`` (the paper's feature alignment),
            ``'multiply'`` or ``'concat'``. ``'concat'`` appends
            ``implicit_cfg['channels']`` (default the level's channels)
            constant channels, so the heads' ``in_channels`` must grow by as
            much. Defaults to ``'add'``.
        implicit_cfg (dict, optional): Keyword arguments of the implicit
            layers (``form``, ``init``, ``std``, ``prior_dim``,
            ``num_atoms``, and ``channels`` for concat; see
            :class:`BaseImplicit`). Defaults to the paper's vector form.
        placement (str): ``'outputs'`` (every output level, any neck) or
            ``'output_convs'`` (on the output convs, for the neck types in
            :data:`NECK_OUTPUT_CONVS`). Defaults to ``'outputs'``.
        alignment_levels (int, optional): Number of output levels, with an
            int ``alignment_channels``: skips the probe run.
        alignment_channels (int | list[int], optional): Channels of every
            output level, or of each: skips the probe run.
        **neck_options: Keys of the neck, merged into ``neck`` as mmengine
            merges configs (``--cfg-options model.neck.out_channels=128``
            reaches the FPN).
    """
    wrapped_key = 'neck'

    def __new__(cls,
                neck: Union[dict, List[dict]],
                operator: str = 'add',
                implicit_cfg: Optional[dict] = None,
                placement: str = 'outputs',
                alignment_levels: Optional[int] = None,
                alignment_channels: Union[int, List[int], None] = None,
                **neck_options) -> nn.Module:
        if placement not in PLACEMENTS:
            raise ValueError(f'{cls.__name__}: placement must be one of '
                             f'{PLACEMENTS}, got {placement!r}')
        neck = merged_config(neck, neck_options, cls.__name__)
        implicit_cfg = dict(implicit_cfg or {})
        if placement == 'output_convs':
            return _build_output_conv_alignment(neck, operator, implicit_cfg)
        if isinstance(neck, (list, tuple)):
            module = mix_into(
                NeckSequence(*(MODELS.build(cfg) for cfg in neck)), cls)
        else:
            module = build_with_mixin(neck, cls, cls.__name__)
        channels = output_level_channels(cls.__name__, module,
                                         neck_probe_inputs(neck),
                                         alignment_levels, alignment_channels)
        attach_alignment(module, channels, operator, implicit_cfg)
        return module


def _build_output_conv_alignment(neck: dict, operator: str,
                                 implicit_cfg: dict) -> nn.Module:
    where = f"{YOLORNeck.__name__}(placement='output_convs')"
    if operator == 'concat':
        raise ValueError(f"{where} cannot concat: the neck's own convs "
                         f'consume the aligned outputs; use add or multiply')
    if 'channels' in implicit_cfg:
        raise ValueError(f'{where}: implicit_cfg has channels='
                         f"{implicit_cfg['channels']}, but each implicit "
                         f"takes its output conv's channels; remove "
                         f"'channels' (it only sets the width of concat)")
    if isinstance(neck, (list, tuple)):
        raise ValueError(f'{where} wraps one neck, got a list of '
                         f"{len(neck)}; use placement='outputs'")
    convs_name = find_output_convs(resolve_type(neck, YOLORNeck.__name__))
    if convs_name is None:
        raise TypeError(
            f'{where} does not know the output convs of {neck["type"]}; '
            f'supported: '
            f'{", ".join(cls.__name__ for cls in NECK_OUTPUT_CONVS)} and '
            f'their subclasses (add an entry to NECK_OUTPUT_CONVS in '
            f"{find_output_convs.__module__.replace('.', '/')}.py) or use "
            f"placement='outputs'.")
    module = build_with_mixin(neck, YOLORNeck, YOLORNeck.__name__)
    for conv in getattr(module, convs_name):
        attach_output_conv_alignment(conv, operator, implicit_cfg)
    return module
