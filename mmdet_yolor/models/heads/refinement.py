# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Implicit prediction refinement of one prediction layer.

As the official ``IDetect`` does per level, a refined prediction layer
computes ``ImplicitM(layer(ImplicitA(x)))``: :func:`attach_prediction_
refinement` turns the layer, in place, into a ``YOLOR<LayerType>`` (e.g.
``YOLORConv2d``, still a ``Conv2d`` with the same keys) whose forward does
that, with the implicits as its children ``implicit_a.<l>`` and
``implicit_m.<l>``.

A layer that a head applies to every pyramid level in turn (FCOS's
``conv_cls``) gets one implicit pair per level and reads the level of each
call from the :class:`~.levels.LevelCursor` of that head. Layers that are
one per level already (``ModuleList``s) have a single pair each. Compiled,
a layer of a head that starts its levels in ``forward_single`` selects the
level's implicits by the cursor's level tensor
(:meth:`~.levels.LevelCursor.level_index_of`), not its int: where a graph
break inside ``forward_single`` makes dynamo resume there, one frame serves
every level.
"""
from typing import List, Optional

import torch
from torch import Tensor, nn

from ..eager_frames import eager_at_top_level, is_compiling
from ..foldable import INPUT, OUTPUT, FoldableMixin, FoldSite, ImplicitSite
from ..layers import ImplicitA, ImplicitM
from ..layers.folding import (fold_add_into_consumer,
                              fold_multiply_into_producer, input_add_folds,
                              is_plain, layer_channels)
from ..wrapping import mix_into, unmix, wrapped_type
from .levels import LevelCursor

# The attributes of a refined layer holding its implicits, by role.
INPUT_IMPLICITS = 'implicit_a'
OUTPUT_IMPLICITS = 'implicit_m'
REFINEMENT_ATTRIBUTES = {INPUT: INPUT_IMPLICITS, OUTPUT: OUTPUT_IMPLICITS}


class PredictionRefinementMixin(FoldableMixin):
    """Mixed into a prediction layer by :func:`attach_prediction_refinement`:
    ``y = implicit_m[l](layer(implicit_a[l](x)))`` at level ``l``.

    Attributes:
        yolor_site (str): ``<HeadType>.<layer path>``, for messages.
        yolor_levels (LevelCursor, optional): The cursor of the head that
            applies this layer to its levels, for a layer with per-level
            implicits; None for one implicit pair.
        yolor_slot (int): This layer's slot in ``yolor_levels``.
    """

    @eager_at_top_level
    def forward(self, x, *args, **kwargs):
        levels = self.yolor_levels
        if levels is None:
            level = '0'
        elif levels.per_level_entry and is_compiling():
            level = levels.level_index_of(self.yolor_slot)
        else:
            level = str(levels.level_of(self.yolor_slot))
        if INPUT_IMPLICITS in self._modules:
            x = self._implicit_at(INPUT_IMPLICITS, level, x)
        out = self.yolor_wrapped_forward(self, x, *args, **kwargs)
        if OUTPUT_IMPLICITS in self._modules:
            out = self._implicit_at(OUTPUT_IMPLICITS, level, out)
        return out

    @eager_at_top_level
    def _implicit_at(self, name: str, level, x: Tensor) -> Tensor:
        """The implicit ``name`` of ``level`` applied to ``x``: ``level`` is
        its key (``'0'``), or in compiled code the level as a tensor of
        shape ``(1, )``, whose implicit is taken from every level's ``g``
        stacked, by ``index_select``: a tensor operation that no value of
        the level guards."""
        # by key: ModuleList.__getitem__ is a frame of its own where dynamo
        # meets this code eagerly (torch 2.1 compiles it)
        implicits = self._modules[name]._modules
        if isinstance(level, str):
            return implicits[level](x)
        first = implicits['0']
        first.check_channels(x)
        # a loop, not a comprehension: no frame of its own where run eagerly
        values = []
        for implicit in implicits.values():
            values.append(implicit.broadcastable(x))
        return first.combine(x, torch.stack(values).index_select(0, level)[0])

    def implicit_sites(self) -> List[ImplicitSite]:
        return [
            ImplicitSite(f'{name}.{level}', implicit, role, '', level)
            for role, name in REFINEMENT_ATTRIBUTES.items()
            for level, implicit in enumerate(self._modules.get(name, ()))
        ]

    def fold_implicit(self) -> List[FoldSite]:
        pending = [
            (name, level) for name in REFINEMENT_ATTRIBUTES.values()
            for level, implicit in enumerate(self._modules.get(name, ()))
            if not implicit.folded
        ]
        kept_why = None
        if self.yolor_levels is not None:
            kept_why = ('per-level implicits on a layer shared by every '
                        'level (train with share_across_levels=True to fold '
                        'them)')
        elif not is_plain(self):
            kept_why = (f'{wrapped_type(self).__name__} normalises its '
                        f'weights')
        if kept_why:
            return [
                FoldSite(f'{name}.{level}', False, kept_why)
                for name, level in pending
            ]
        sites = []
        # the add first: m * (W (x + a) + b) = (m W) x + m (b + W a)
        if (INPUT_IMPLICITS, 0) in pending:
            add = self._modules[INPUT_IMPLICITS][0]
            if input_add_folds(self):
                fold_add_into_consumer(self, add.value())
                add.mark_folded()
                sites.append(
                    FoldSite(f'{INPUT_IMPLICITS}.0', True,
                             'add folded into bias (b += W a)'))
            elif self.transposed:
                sites.append(
                    FoldSite(
                        f'{INPUT_IMPLICITS}.0', False,
                        'add before a transposed '
                        'conv: its output overlaps shift unevenly'))
            else:
                kernel = 'x'.join(map(str, self.kernel_size))
                sites.append(
                    FoldSite(
                        f'{INPUT_IMPLICITS}.0', False, f'add before a padded '
                        f'{kernel} conv: exact only inside the zero border'))
        if (OUTPUT_IMPLICITS, 0) in pending:
            multiply = self._modules[OUTPUT_IMPLICITS][0]
            fold_multiply_into_producer(self, multiply.value())
            multiply.mark_folded()
            sites.append(
                FoldSite(
                    f'{OUTPUT_IMPLICITS}.0', True,
                    'multiply folded into weight and bias (W *= m, b *= m)'))
        return sites

    def strip_folded_implicit(self) -> None:
        """Remove folded implicits; a layer left with none is a plain layer
        of its original type again."""
        for name in REFINEMENT_ATTRIBUTES.values():
            implicits = self._modules.get(name)
            if implicits is not None and all(i.folded for i in implicits):
                delattr(self, name)
        if not any(name in self._modules
                   for name in REFINEMENT_ATTRIBUTES.values()):
            del self.yolor_site, self.yolor_levels, self.yolor_slot
            unmix(self)


def attach_prediction_refinement(layer: nn.Module,
                                 levels: Optional[LevelCursor],
                                 implicit_cfg: dict,
                                 site: str,
                                 input_implicit: bool = True) -> None:
    """Refine ``layer`` in place: one ImplicitA on its input (if
    ``input_implicit``) and one ImplicitM on its output per level.

    The implicits are children of ``layer`` (keys ``<layer>.implicit_a.<l>``
    and ``<layer>.implicit_m.<l>``) and the layer becomes a subclass of its
    type (``YOLORConv2d``), so ``init_cfg`` overrides by name or layer type
    treat it as before.

    Args:
        layer (nn.Module): A conv or Linear.
        levels (LevelCursor, optional): The cursor of the head that applies
            the layer to each of its levels in turn: one implicit pair per
            level. None for a layer applied once (one pair).
        implicit_cfg (dict): Keyword arguments of the implicit layers.
        site (str): ``<HeadType>.<layer path>``, for messages.
        input_implicit (bool): Add the ImplicitA on the input. Defaults to
            True.
    """
    in_channels, out_channels, dim = layer_channels(layer)
    num_levels = 1 if levels is None else levels.num_levels
    if input_implicit:
        layer.add_module(
            INPUT_IMPLICITS,
            nn.ModuleList(
                ImplicitA(in_channels, dim=dim, **implicit_cfg)
                for _ in range(num_levels)))
    layer.add_module(
        OUTPUT_IMPLICITS,
        nn.ModuleList(
            ImplicitM(out_channels, dim=dim, **implicit_cfg)
            for _ in range(num_levels)))
    layer.yolor_site = site
    layer.yolor_levels = levels
    layer.yolor_slot = -1 if levels is None else levels.add_layer(site)
    mix_into(layer, PredictionRefinementMixin)
