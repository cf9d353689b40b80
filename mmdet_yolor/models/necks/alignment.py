# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Implicit feature alignment of a module's output levels, shared by
``YOLORNeck`` and ``YOLORBackbone`` (detectors without a neck).

:class:`FeatureAlignmentMixin` adds one implicit layer to each output level
of the module it is mixed into (:func:`attach_alignment`);
:class:`OutputConvAlignmentMixin` puts one on a conv producing a level
(``placement='output_convs'``, :func:`attach_output_conv_alignment`).

Both forwards are :func:`~..eager_frames.eager_at_top_level`: where the
aligned module breaks dynamo's graph (CenterNet's neck runs mmcv's
deformable convs), dynamo meets the mixin's forward as a frame of its own
and runs it eagerly, so that the module's own forward is the frame it
compiles, as in the baseline; compiled, the mixin's forward and its resume
after the break would be two frames and a graph break more.
"""
from typing import List

from torch import Tensor, nn

from ..eager_frames import eager_at_top_level
from ..foldable import ALIGNMENT, FoldableMixin, FoldSite, ImplicitSite
from ..layers import BaseImplicit, build_implicit, reset_implicits
from ..wrapping import forward_owner, mix_into, unmix, wrapped_type
from .fpn_folding import FOLDED_HOW, LEVEL_PRODUCERS, fold_into_output_conv

# The attribute holding feature-alignment implicits, on the aligned module
# (one per output level) or on an output conv (one).
ALIGNMENT_ATTRIBUTE = 'implicit_alignment'


class FeatureAlignmentMixin(FoldableMixin):
    """Feature alignment of the module it is mixed into (a neck, or a
    backbone without neck): output level ``i`` becomes
    ``implicit_alignment[i](out_i)``.

    Levels whose implicit was folded hold an ``nn.Identity``.
    """

    def implicit_sites(self) -> List[ImplicitSite]:
        alignment = self._modules.get(ALIGNMENT_ATTRIBUTE) or ()
        return [
            ImplicitSite(f'{ALIGNMENT_ATTRIBUTE}.{level}', implicit, ALIGNMENT,
                         '', level) for level, implicit in enumerate(alignment)
            if isinstance(implicit, BaseImplicit)
        ]

    def init_weights(self) -> None:
        super().init_weights()
        reset_implicits(self)

    @eager_at_top_level
    def forward(self, *args, **kwargs):
        outs = self.yolor_wrapped_forward(self, *args, **kwargs)
        # `in`, not _modules.get(): torch 2.1's dynamo breaks the graph on
        # get() of a module's _modules
        if ALIGNMENT_ATTRIBUTE not in self._modules:  # 'output_convs'
            return outs
        # the implicits from their dict: run eagerly, ModuleList's
        # __getitem__, __len__ and __iter__ are frames that torch 2.1's
        # dynamo compiles on their own (CenterNet: 2 frames)
        implicits = list(self._modules[ALIGNMENT_ATTRIBUTE]._modules.values())
        if isinstance(outs, Tensor):
            return implicits[0](outs)
        if len(outs) != len(implicits):
            raise ValueError(
                f'{type(self).__name__} was built for {len(implicits)} '
                f'output levels but returned {len(outs)}; pass '
                f'alignment_levels and alignment_channels to the YOLOR '
                f'wrapper.')
        # a loop, not a generator: run eagerly (see the module docstring),
        # a generator's frame is one that dynamo tries to compile on its own
        aligned = []
        for implicit, out in zip(implicits, outs):
            aligned.append(implicit(out))
        return type(outs)(aligned)

    def fold_implicit(self) -> List[FoldSite]:
        """Fold what is exact of the alignment of each output level (see
        :data:`LEVEL_PRODUCERS`); report every level."""
        alignment = self._modules.get(ALIGNMENT_ATTRIBUTE)
        if alignment is None:
            return []
        rule = LEVEL_PRODUCERS.get(forward_owner(wrapped_type(self)))
        producers = rule(self) if rule else [
            f'no folding rule for the outputs of '
            f'{wrapped_type(self).__name__}'
        ] * len(alignment)
        sites = []
        for level, (implicit,
                    producer) in enumerate(zip(alignment, producers)):
            if not isinstance(implicit, BaseImplicit) or implicit.folded:
                continue
            why = producer if isinstance(producer, str) else \
                fold_into_output_conv(producer, implicit)
            sites.append(
                FoldSite(f'{ALIGNMENT_ATTRIBUTE}.{level}', not why, why
                         or FOLDED_HOW))
        return sites

    def strip_folded_implicit(self) -> None:
        """Replace folded level implicits by ``nn.Identity``."""
        alignment = self._modules.get(ALIGNMENT_ATTRIBUTE, ())
        for level, implicit in enumerate(alignment):
            if isinstance(implicit, BaseImplicit) and implicit.folded:
                alignment[level] = nn.Identity()


class OutputConvAlignmentMixin(FoldableMixin):
    """Mixed into a conv producing an output level of a neck
    (``placement='output_convs'``): ``y -> implicit_alignment(y)``."""

    @property
    def _alignment(self) -> BaseImplicit:
        return self._modules[ALIGNMENT_ATTRIBUTE]

    @eager_at_top_level
    def forward(self, *args, **kwargs):
        return self._alignment(
            self.yolor_wrapped_forward(self, *args, **kwargs))

    def implicit_sites(self) -> List[ImplicitSite]:
        return [
            ImplicitSite(ALIGNMENT_ATTRIBUTE, self._alignment, ALIGNMENT, '',
                         None)
        ]

    def fold_implicit(self) -> List[FoldSite]:
        if self._alignment.folded:
            return []
        why = fold_into_output_conv(self, self._alignment)
        return [FoldSite(ALIGNMENT_ATTRIBUTE, not why, why or FOLDED_HOW)]

    def strip_folded_implicit(self) -> None:
        if self._alignment.folded:
            delattr(self, ALIGNMENT_ATTRIBUTE)
            unmix(self)


def attach_output_conv_alignment(conv: nn.Module, operator: str,
                                 implicit_cfg: dict) -> None:
    """Align the output of ``conv`` (an output conv of a neck) with one
    implicit of its output channels."""
    setattr(conv, ALIGNMENT_ATTRIBUTE,
            build_implicit(operator, conv.out_channels, dim=1, **implicit_cfg))
    mix_into(conv, OutputConvAlignmentMixin)


def attach_alignment(module: nn.Module, channels: List[int], operator: str,
                     implicit_cfg: dict) -> None:
    """Give ``module`` (mixed with :class:`FeatureAlignmentMixin`) one
    implicit per output level of ``channels`` channels (``concat`` appends
    ``implicit_cfg['channels']``, default the level's channels)."""
    implicit_cfg = dict(implicit_cfg)
    concat_channels = implicit_cfg.pop('channels', None)
    if operator != 'concat' and concat_channels is not None and any(
            c != concat_channels for c in channels):
        raise ValueError(f'implicit_cfg channels={concat_channels} must '
                         f'equal the output channels {channels} for '
                         f'operator {operator!r} (only concat sets its '
                         f'own channel count)')
    setattr(
        module, ALIGNMENT_ATTRIBUTE,
        nn.ModuleList(
            build_implicit(
                operator, concat_channels or level, dim=1, **implicit_cfg)
            for level in channels))
