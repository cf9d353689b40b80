# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORHead: implicit prediction refinement for any mmdet head.

Every final prediction layer of the head (found by
:func:`~.prediction_layers.find_prediction_layers`) computes
``ImplicitM(layer(ImplicitA(x)))`` (see :mod:`.refinement`): dense heads,
RoI heads of every cascade stage, DETR-family decoder branches, and
instance, panoptic and semantic heads alike.
"""
import logging
from typing import Iterator, List, Optional

from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import nn

from ..layers import BaseImplicit
from ..layers.folding import input_add_folds
from ..wrapping import YOLORMixin, build_with_mixin, wrapped_type
from .prediction_layers import find_prediction_layers
from .refinement import (IMPLICIT_ATTRIBUTES, PredictionRefinementMixin,
                         attach_prediction_refinement)

INPUT_IMPLICIT_MODES = ('all', 'foldable', 'none')
# Attributes of dense heads holding their multi-level prior generator.
PRIOR_GENERATORS = ('prior_generator', 'approx_anchor_generator')


def head_num_levels(head: nn.Module) -> int:
    """How many pyramid levels a head applies its shared layers to: from
    its prior generator, else its ``num_levels`` or ``strides``; 1 for
    heads without levels (RoI and DETR-family heads)."""
    for name in PRIOR_GENERATORS:
        levels = getattr(getattr(head, name, None), 'num_levels', None)
        if isinstance(levels, int):
            return levels
    levels = getattr(head, 'num_levels', None)
    if isinstance(levels, int):
        return levels
    strides = getattr(head, 'strides', None)
    return len(strides) if isinstance(strides, (list, tuple)) else 1


class YOLORHeadMixin(YOLORMixin):
    """Mixed into a head type by :func:`build_yolor_head`; see there."""

    def refined_layers(self) -> List[PredictionRefinementMixin]:
        """The prediction layers that carry implicit refinement."""
        return [
            m for m in self.modules()
            if isinstance(m, PredictionRefinementMixin)
        ]

    def implicit_modules(self) -> Iterator[BaseImplicit]:
        """The implicit layers of the prediction layers."""
        for layer in self.refined_layers():
            for name in IMPLICIT_ATTRIBUTES:
                yield from layer._modules.get(name, ())

    def forward(self, *args, **kwargs):
        # Layers shared by every level pick their level by counting calls:
        # count from zero in every forward and check each ran once per level.
        shared = [
            layer for layer in self.refined_layers()
            if layer.yolor_num_levels > 1
        ]
        for layer in shared:
            layer.yolor_calls = 0
        try:
            outputs = super().forward(*args, **kwargs)
            for layer in shared:
                layer.check_levels_done(wrapped_type(self).__name__)
        finally:
            for layer in shared:
                layer.yolor_calls = 0
        return outputs

    def init_weights(self) -> None:
        # The head may re-initialise every parameter (DIIHead xavier-inits
        # all matrices), so the implicits are reset afterwards.
        super().init_weights()
        for implicit in self.implicit_modules():
            implicit.reset_parameters()


@MODELS.register_module(name='YOLORHead')
def build_yolor_head(head: dict,
                     implicit_cfg: Optional[dict] = None,
                     share_across_levels: bool = False,
                     input_implicit: str = 'all',
                     **head_kwargs) -> nn.Module:
    """Build ``head`` with YOLOR implicit prediction refinement; registered
    in ``MODELS`` as ``'YOLORHead'``.

    The result is an instance of ``YOLOR<HeadType>``, a subclass of the
    configured head type: mmdet's loss, predict, test-time augmentation and
    ``init_weights`` run unchanged, every state-dict key of the original head
    is kept, and each final prediction layer computes
    ``ImplicitM(layer(ImplicitA(x)))``. Which layers those are is decided
    on the built head (:func:`find_prediction_layers`); a head with none
    (Sparse R-CNN's ``EmbeddingRPNHead``) is returned without implicits.

    Example:
        >>> bbox_head = dict(
        ...     type='YOLORHead',
        ...     head=dict(type='FCOSHead', num_classes=80, in_channels=256),
        ...     implicit_cfg=dict(form='vector', init='paper'))

    Args:
        head (dict): Config of the head to wrap.
        implicit_cfg (dict, optional): Keyword arguments of the implicit
            layers (``form``, ``init``, ``std``, ``prior_dim``,
            ``num_atoms``; see :class:`BaseImplicit`). Defaults to the
            paper's vector form and initialisation.
        share_across_levels (bool): For layers a head applies to every
            pyramid level, use one implicit pair for all levels instead of
            one per level. Shared implicits fold exactly into the shared
            layer (see ``mmdet_yolor.deploy``). Defaults to False.
        input_implicit (str): Where prediction layers get the ImplicitA on
            their input: ``'all'`` (the official ``IDetect`` pattern),
            ``'foldable'`` (only where it folds exactly into the layer:
            ``nn.Linear`` and unpadded 1x1 convs, not the padded 3x3 convs
            of FCOS/ATSS) or ``'none'``. Defaults to ``'all'``.
        **head_kwargs: Merged into ``head``. mmdet detectors inject
            ``train_cfg``, ``test_cfg`` and ``num_classes`` this way.

    Returns:
        nn.Module: The head, of type ``YOLOR<HeadType>``.
    """
    if input_implicit not in INPUT_IMPLICIT_MODES:
        raise ValueError(f'YOLORHead: input_implicit must be one of '
                         f'{INPUT_IMPLICIT_MODES}, got {input_implicit!r}')
    module = build_with_mixin({
        **head,
        **head_kwargs
    }, YOLORHeadMixin, 'YOLORHead')
    head_type = wrapped_type(module).__name__
    sites = find_prediction_layers(module)
    if not sites:
        print_log(
            f'YOLORHead: {head_type} has no prediction layer to refine (a '
            f'conv or Linear whose output is a prediction); it gets no '
            f'implicits.',
            logger='current',
            level=logging.WARNING)
    num_levels = 1 if share_across_levels else head_num_levels(module)
    for site in sites:
        with_input = input_implicit == 'all' or (
            input_implicit == 'foldable' and input_add_folds(site.layer))
        attach_prediction_refinement(site.layer,
                                     1 if site.per_level else num_levels,
                                     dict(implicit_cfg or {}),
                                     f'{head_type}.{site.name}', with_input)
    return module
