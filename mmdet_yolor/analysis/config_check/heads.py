# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The head families of a detector, and which prediction layers of each
its YOLOR form refines."""
from typing import Dict, List, Sequence

from torch import nn

from ...models import implicit_layers, refined_layers
from ...models.heads.prediction_layers import why_predicts_nothing
from ...models.layers.folding import PREDICTION_LAYER_TYPES

# Methods by which mmdet's heads compute their losses: a ``*_head`` module
# without one (ResNet's last stage as an RoI ``shared_head``, SCNet's
# ``feat_relay_head``, SOLOv2's ``mask_feature_head``) computes features.
LOSS_METHODS = ('loss', 'loss_by_feat', 'loss_and_target')


def _is_head_path(path: str) -> bool:
    """A ``*_head`` module, or a stage of a list of them (cascades)."""
    parts = path.split('.')
    return parts[-1].endswith('_head') or (len(parts) > 1
                                           and parts[-1].isdigit()
                                           and parts[-2].endswith('_head'))


def head_families(model: nn.Module) -> List[str]:
    """The head families of ``model`` that have prediction layers.

    A head family is a ``*_head`` module (or a cascade stage of one) that
    computes a loss (:data:`LOSS_METHODS`) and holds a trainable conv or
    Linear outside implicit layers, unless it holds another such family:
    ``roi_head`` holds ``roi_head.bbox_head`` (a conv of its RoI extractor
    is no prediction layer). A teacher frozen for distillation or
    semi-supervised learning has none. Heads the plugin declares to predict
    nothing (:func:`heads_predicting_nothing`) are none either.
    """
    predicting_nothing = heads_predicting_nothing(model)
    implicit = tuple(f'{name}.' for name in implicit_layers(model))
    layers = [
        name for name, module in model.named_modules()
        if isinstance(module, PREDICTION_LAYER_TYPES)
        and not name.startswith(implicit) and any(
            param.requires_grad for param in module.parameters())
    ]
    families = [
        name for name, module in model.named_modules()
        if _is_head_path(name) and any(
            hasattr(module, method) for method in LOSS_METHODS) and any(
                layer.startswith(f'{name}.')
                for layer in layers) and name not in predicting_nothing
    ]
    return [
        family for family in families
        if not any(other.startswith(f'{family}.') for other in families)
    ]


def heads_predicting_nothing(model: nn.Module) -> Dict[str, str]:
    """The ``*_head`` modules of ``model`` that predict nothing of their own
    (:func:`~mmdet_yolor.models.heads.prediction_layers.why_predicts_nothing`:
    an empty
    entry), with the table's reason: the sweep reports them instead of
    counting them as head families."""
    found = {}
    for name, module in model.named_modules():
        why = why_predicts_nothing(
            type(module)) if _is_head_path(name) else None
        if why is not None:
            found[name] = why
    return found


def family_of(path: str, families: Sequence[str]) -> str:
    """The innermost of ``families`` holding the module ``path``; else the
    path up to its last ``*_head`` component (with a stage index after
    it), else its top-level module."""
    holders = [
        family for family in families
        if path == family or path.startswith(f'{family}.')
    ]
    if holders:
        return max(holders, key=len)
    parts = path.split('.')
    heads = [i for i, part in enumerate(parts) if part.endswith('_head')]
    if not heads:
        return parts[0]
    end = heads[-1] + 1
    if end < len(parts) and parts[end].isdigit():
        end += 1
    return '.'.join(parts[:end])


def refined_by_family(model: nn.Module,
                      families: Sequence[str]) -> Dict[str, List[str]]:
    """The refined prediction layers of ``model`` (module paths) per head
    family (:func:`family_of`), families sorted."""
    found: Dict[str, List[str]] = {}
    for layer in refined_layers(model):
        found.setdefault(family_of(layer, families), []).append(layer)
    return dict(sorted(found.items()))
