# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Which layers of a head make its final predictions.

Prediction refinement goes on the final classification, regression, mask or
semantic prediction layers of a head: the convs or Linears whose raw output
is a prediction. :func:`find_prediction_layers` finds them

1. from :data:`PREDICTION_LAYERS`, the entry of the head's class or of its
   nearest base class, for the few heads the generic search gets wrong;
2. otherwise by :func:`search_prediction_layers`, from the head's structure.

An attribute naming a prediction site holds one of

- a prediction layer (``nn.Conv1d``/``Conv2d``/transposed convs,
  ``nn.Linear``, or a ``ConvModule`` with neither norm nor activation):
  shared by every pyramid level when the head has several;
- an ``nn.ModuleList`` of them, one per level, stage or decoder layer
  (YOLOX, RTMDet, YOLOv3, SSD, SOLO masks, DETR-family branches): each gets
  its own implicits, nothing is shared;
- an ``nn.Sequential`` or mmdet ``MLP`` whose last conv or Linear is the
  prediction layer (CenterNet, TOOD, DETR-family regression branches).
"""
import logging
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import (CentripetalHead, CondInstMaskHead,
                                      EmbeddingRPNHead, MaskFormerHead,
                                      SOLOV2Head, YOLACTProtonet)
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.models.layers.transformer import MLP
from mmdet.models.roi_heads.mask_heads import FeatureRelayHead
from mmdet.models.roi_heads.shared_heads import ResLayer
from mmdet.models.seg_heads.panoptic_fusion_heads import BasePanopticFusionHead
from mmengine.logging import print_log
from torch import nn

from ..class_tables import lookup_by_class
from ..layers.folding import PREDICTION_LAYER_TYPES, layer_channels
from ..wrapping import wrapped_type


@dataclass(frozen=True)
class PredictionLayers:
    """The prediction sites of a head type that the generic search does not
    find right.

    Attributes:
        names (tuple[str]): Attributes of the head (dotted for nested
            modules) holding its prediction sites (see module docstring); a
            Sequential's last conv or Linear counts even if an activation
            follows it. Empty for a head that predicts nothing to refine.
        why (str): Why the generic search does not do for this head.
    """
    names: Tuple[str, ...]
    why: str


# Heads the generic search does not handle right, by class: a subclass
# without an entry of its own uses its nearest base class's entry. To fix a
# head, add an entry and a test in tests/test_models/test_heads/.
PREDICTION_LAYERS: Dict[type, PredictionLayers] = {
    EmbeddingRPNHead:
    PredictionLayers(
        (), "Sparse R-CNN's proposals are learned embeddings: "
        'input-independent already, no prediction layer to refine'),
    FeatureRelayHead:
    PredictionLayers((),
                     'relays box features to the mask head; predicts nothing'),
    ResLayer:
    PredictionLayers(
        (), "the backbone stage of C4 RoI heads (their 'shared_head'): "
        'computes features, predicts nothing'),
    CondInstMaskHead:
    PredictionLayers(
        (), 'its mask convs are dynamic: their weights come from the box '
        "head's controller, which YOLOR refines; its own convs compute mask "
        'features'),
    MaskFormerHead:
    PredictionLayers(
        ('cls_embed', 'mask_embed'),
        'the mask embedding is as wide as the features the class embedding '
        'reads, so it looks like an intermediate layer'),
    SOLOV2Head:
    PredictionLayers(
        ('conv_cls', 'conv_kernel'),
        'the dynamic kernels can be as wide as the head features (light '
        'models), so they look like an intermediate layer'),
    CentripetalHead:
    PredictionLayers(
        ('tl_heat', 'br_heat', 'tl_off', 'br_off', 'tl_guiding_shift',
         'br_guiding_shift', 'tl_centripetal_shift', 'br_centripetal_shift'),
        'the offsets of its deformable convs are plain convs too, and the '
        'guiding shifts (predictions) also feed them'),
    YOLACTProtonet:
    PredictionLayers(
        ('protonet', 'segm_branch.segm_conv'),
        'its prototype convs end in a ReLU and its semantic branch is a '
        'nested module'),
}


class PredictionSite(NamedTuple):
    """A prediction layer found in a head.

    Attributes:
        name (str): Its module path in the head.
        layer (nn.Module): The conv or Linear.
        per_level (bool): Whether it came from a ``ModuleList`` (one layer
            per level, stage or decoder layer) rather than from one layer
            that a multi-level head applies to every level.
    """
    name: str
    layer: nn.Module
    per_level: bool


def prediction_layer(module: nn.Module,
                     trailing_ops: bool = False) -> Optional[nn.Module]:
    """The prediction layer ``module`` stands for, or None.

    Args:
        module (nn.Module): A conv or Linear; a ``ConvModule`` with neither
            norm nor activation (its conv); a Sequential or ``MLP`` (its last
            layer, if that is one of these).
        trailing_ops (bool): Let a Sequential's last conv or Linear count
            even when an activation follows it. Defaults to False.
    """
    if isinstance(module, PREDICTION_LAYER_TYPES):
        return module
    if isinstance(module, ConvModule):
        plain = not (module.with_norm or module.with_activation)
        return module.conv if plain else None
    if isinstance(module, MLP):
        items = list(module.layers)
    elif isinstance(module, nn.Sequential):
        items = list(module)
    else:
        return None
    if trailing_ops:
        items = [item for item in items if prediction_layer(item)]
    return prediction_layer(items[-1]) if items else None


def _input_width(module: nn.Module) -> int:
    """Channels read by the first conv or Linear of ``module``."""
    first = next(m for m in module.modules()
                 if isinstance(m, PREDICTION_LAYER_TYPES))
    return layer_channels(first)[0]


def search_prediction_layers(head: nn.Module) -> List[str]:
    """Find the prediction sites of ``head`` from its structure.

    Candidates are the children of the head that are prediction layers,
    Sequentials/MLPs ending in one, or ModuleLists of those (see module
    docstring): stacks of ConvModules with norm or activation (``cls_convs``
    of RetinaNet, FCOS...) are not. A candidate is dropped as an
    intermediate layer when it feeds another layer: a ModuleList whose
    layers chain (each output as wide as the next input: stacked FCs), or
    a candidate whose every output is exactly as wide as the input of
    another candidate (RPN's ``rpn_conv``, a mask head's ``upsample``,
    shared FCs before ``fc_cls``).

    A head made of stage heads (a ModuleList of dense heads, as Cascade
    RPN's ``stages``) has the prediction sites of each stage.

    Returns:
        list[str]: Names of the prediction sites, in definition order
        (dotted for those of a stage head).
    """
    candidates = {}
    stage_sites = []
    for name, child in head.named_children():
        items = list(child) if isinstance(child, nn.ModuleList) else [child]
        if isinstance(child, nn.ModuleList) and items and all(
                isinstance(item, BaseDenseHead) for item in items):
            stage_sites += [
                f'{name}.{index}.{site}' for index, item in enumerate(items)
                for site in search_prediction_layers(item)
            ]
            continue
        layers = [prediction_layer(item) for item in items]
        if layers and all(layer is not None for layer in layers):
            candidates[name] = (layers, [_input_width(i) for i in items])
    names = []
    for name, (layers, widths) in candidates.items():
        outputs = [layer_channels(layer)[1] for layer in layers]
        chained = len(layers) > 1 and outputs[:-1] == widths[1:]
        consumed = {
            width
            for other, (_, other_widths) in candidates.items() if other != name
            for width in other_widths
        }
        if not chained and not all(out in consumed for out in outputs):
            names.append(name)
    return names + stage_sites


def table_entry(head_type: type) -> Optional[PredictionLayers]:
    """The :data:`PREDICTION_LAYERS` entry of ``head_type`` or of its
    nearest listed base class."""
    return lookup_by_class(PREDICTION_LAYERS, head_type)


def why_predicts_nothing(head_type: type) -> Optional[str]:
    """Why heads of ``head_type`` have no prediction layers of their own,
    or None if they have: the reason of an empty :data:`PREDICTION_LAYERS`
    entry (``EmbeddingRPNHead``), or that it is a parameter-free panoptic
    fusion head."""
    entry = table_entry(head_type)
    if entry is not None and not entry.names:
        return entry.why
    if issubclass(head_type, BasePanopticFusionHead):
        return 'a panoptic fusion head: it has no parameters'
    return None


def _resolve(head: nn.Module, name: str,
             trailing_ops: bool) -> List[Tuple[nn.Module, bool]]:
    """The prediction layers held by attribute ``name`` of ``head``, each
    with whether it is one of a ModuleList."""
    value = head.get_submodule(name)
    if isinstance(value, nn.ModuleList):
        items, per_level = list(value), True
    else:
        items, per_level = [value], False
    layers = [prediction_layer(item, trailing_ops) for item in items]
    if not items or any(layer is None for layer in layers):
        raise AttributeError(f'{name} holds no prediction layer')
    return [(layer, per_level) for layer in layers]


def find_prediction_layers(head: nn.Module) -> List[PredictionSite]:
    """The prediction sites of ``head``: from its :data:`PREDICTION_LAYERS`
    entry, else (or if the entry names layers the head does not have, as a
    subclass renaming them) from :func:`search_prediction_layers`. A layer
    reachable from several attributes (DETR heads sharing one Linear across
    decoder layers) is listed once.
    """
    entry = table_entry(type(head))
    sites = None
    if entry is not None:
        try:
            sites = [(layer, per_level) for name in entry.names
                     for layer, per_level in _resolve(head, name, True)]
        except AttributeError as error:
            head_type = wrapped_type(head).__name__
            print_log(
                f'{head_type}: its PREDICTION_LAYERS entry does not fit '
                f'({error}); searching its prediction layers instead. Add '
                f'an entry for {head_type}.',
                logger='current',
                level=logging.WARNING)
    if sites is None:
        sites = [(layer, per_level) for name in search_prediction_layers(head)
                 for layer, per_level in _resolve(head, name, False)]
    paths = {id(module): path for path, module in head.named_modules()}
    found: Dict[int, PredictionSite] = {}
    for layer, per_level in sites:
        if id(layer) not in found:
            found[id(layer)] = PredictionSite(paths[id(layer)], layer,
                                              per_level)
    return list(found.values())
