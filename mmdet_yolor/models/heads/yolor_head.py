# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""YOLORHead: implicit prediction refinement for any mmdet head.

Every final prediction layer of the head (found by
:func:`~.prediction_layers.find_prediction_layers`) computes
``ImplicitM(layer(ImplicitA(x)))`` (see :mod:`.refinement`): dense heads,
RoI heads of every cascade stage, DETR-family decoder branches, and
instance, panoptic and semantic heads alike.
"""
import logging
from typing import Optional

from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import nn

from ..layers import reset_implicits
from ..layers.folding import input_add_folds
from ..wrapping import (YOLORWrapper, build_with_mixin, merged_config,
                        mix_into, subclass_with_mixin, wrapped_type)
from .levels import (LevelCursor, LevelOwnerMixin, LevelSequentialMixin,
                     head_num_levels)
from .prediction_layers import find_prediction_layers
from .refinement import attach_prediction_refinement

INPUT_IMPLICIT_MODES = ('all', 'foldable', 'none')


def level_owner(head: nn.Module, site: str) -> nn.Module:
    """The head that applies the layer ``site`` to its pyramid levels: the
    innermost dense head on the way to it (a stage head of Cascade RPN),
    else ``head`` itself."""
    owner = head
    parts = site.split('.')[:-1]
    for depth in range(1, len(parts) + 1):
        module = head.get_submodule('.'.join(parts[:depth]))
        if isinstance(module, BaseDenseHead):
            owner = module
    return owner


@MODELS.register_module()
class YOLORHead(YOLORWrapper):
    """A head with YOLOR implicit prediction refinement;
    ``type='YOLORHead'``.

    Building it builds the head and returns it as a ``YOLOR<HeadType>``, an
    instance of this class and of the head's type: mmdet's loss, predict,
    test-time augmentation and ``init_weights`` run unchanged, every
    state-dict key of the original head is kept, and each final prediction
    layer computes ``ImplicitM(layer(ImplicitA(x)))``. Which layers those
    are is decided on the built head (:func:`find_prediction_layers`); a
    head with none (Sparse R-CNN's ``EmbeddingRPNHead``) is returned without
    implicits.

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
        **head_options: Keys of the head, merged into ``head`` as mmengine
            merges configs: a user's overrides
            (``model.bbox_head.loss_cls.loss_weight=2.0``) and what mmdet
            detectors inject (``train_cfg``, ``test_cfg``,
            ``num_classes``).
    """
    wrapped_key = 'head'

    def __new__(cls,
                head: dict,
                implicit_cfg: Optional[dict] = None,
                share_across_levels: bool = False,
                input_implicit: str = 'all',
                **head_options) -> nn.Module:
        if input_implicit not in INPUT_IMPLICIT_MODES:
            raise ValueError(f'{cls.__name__}: input_implicit must be one of '
                             f'{INPUT_IMPLICIT_MODES}, got {input_implicit!r}')
        module = build_with_mixin(
            merged_config(head, head_options, cls.__name__), cls, cls.__name__)
        head_type = wrapped_type(module).__name__
        sites = find_prediction_layers(module)
        if not sites:
            print_log(
                f'YOLORHead: {head_type} has no prediction layer to refine '
                f'(a conv or Linear whose output is a prediction); it gets '
                f'no implicits.',
                logger='current',
                level=logging.WARNING)
        for site in sites:
            with_input = input_implicit == 'all' or (
                input_implicit == 'foldable' and input_add_folds(site.layer))
            levels = None if share_across_levels or site.per_level else \
                _level_cursor(module, site.name)
            attach_prediction_refinement(site.layer, levels,
                                         dict(implicit_cfg or {}),
                                         f'{head_type}.{site.name}',
                                         with_input)
            if levels is not None:
                _mix_into_sequential(module, site.name)
        return module

    def init_weights(self) -> None:
        super().init_weights()
        reset_implicits(self)


class YOLORLevelHead(LevelOwnerMixin, YOLORHead):
    """A :class:`YOLORHead` whose head applies refined layers to its pyramid
    levels: its forward also tracks the level (:class:`LevelOwnerMixin`).

    Only such heads get a forward of their own: an overriding forward is one
    more frame for dynamo, and on torch 2.4 a graph break inside the
    wrapped forward (mmcv's ``MultiheadAttention`` in Sparse R-CNN's
    ``DIIHead``) then costs one more frame and graph break per call.
    """


def _mix_into_sequential(head: nn.Module, site: str) -> None:
    """Make the plain ``nn.Sequential`` holding the shared layer ``site``
    (TOOD's ``cls_prob_module.2``), if one does, run eagerly where dynamo
    meets it as a frame of its own (:class:`LevelSequentialMixin`): torch
    2.1 compiles ``Sequential.forward`` there and, taking module
    attributes for constants, would keep the level of its first call."""
    if '.' not in site:
        return
    parent = head.get_submodule(site.rsplit('.', 1)[0])
    if type(parent) is nn.Sequential:
        mix_into(parent, LevelSequentialMixin)


def _level_cursor(head: nn.Module, site: str) -> Optional[LevelCursor]:
    """The cursor of the head applying ``site`` to its levels (making the
    head a :class:`YOLORLevelHead`, or mixing :class:`LevelOwnerMixin` into
    a stage head); None where it has one level."""
    owner = level_owner(head, site)
    if head_num_levels(owner) == 1:
        return None
    if owner is head and not isinstance(head, LevelOwnerMixin):
        head.__class__ = subclass_with_mixin(
            wrapped_type(head), YOLORLevelHead)
    elif not isinstance(owner, LevelOwnerMixin):
        mix_into(owner, LevelOwnerMixin)
    return owner.level_cursor()
