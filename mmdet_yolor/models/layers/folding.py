# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Rules that fold an implicit value into a neighbouring layer.

``g(z)`` does not depend on the input, so after training it is a constant
that the layer next to it can absorb (paper section 4.4). One function per
rule, for a convolution (any dimension, transposed too) or Linear computing
``y = W x + b``:

- :func:`fold_multiply_into_producer`: ``m * (W x + b)`` -> ``W' = m W``,
  ``b' = m b``; exact for any such layer.
- :func:`fold_add_into_consumer`: ``W (x + a) + b`` -> ``b' = b + W a``;
  exact for Linear and unpadded 1x1 convs only (a padded kxk conv sees the
  constant only inside its zero border, a transposed conv at its overlaps).
- :func:`fold_add_into_producer`: ``(W x + b) + a`` -> ``b' = b + a``; exact
  when nothing (norm, activation) comes between the layer and the add.

The modules that own implicit layers (the YOLOR neck, backbone and
prediction-layer mixins) decide which rule applies where and report each
decision as a :class:`FoldSite`.
"""
from dataclasses import dataclass
from typing import List

import torch
from mmdet.models.layers import NormedConv2d, NormedLinear
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from ..wrapping import YOLORMixin

# The layers whose output or input an implicit can refine.
PREDICTION_LAYER_TYPES = (_ConvNd, nn.Linear)


@dataclass
class FoldSite:
    """What folding did with one implicit layer.

    Attributes:
        name (str): Module path of the implicit layer.
        folded (bool): Whether its value now lives in a neighbouring layer.
        how (str): The rule that folded it, or why it was kept.
    """
    name: str
    folded: bool
    how: str


class FoldableMixin(YOLORMixin):
    """A YOLOR module that owns implicit layers and knows how to fold them
    (as mmyolo's re-parameterisable modules own ``switch_to_deploy``).
    ``mmdet_yolor.deploy`` walks a model and calls these two methods."""

    def fold_implicit(self) -> List[FoldSite]:
        """Fold every implicit layer this module owns whose folding is
        exact into its neighbouring layer and mark it folded (it computes
        the identity from then on); leave the others. Implicits folded
        before are skipped, so folding twice changes nothing.

        Returns:
            list[FoldSite]: One per implicit not folded before, named
            relative to this module.
        """
        raise NotImplementedError

    def strip_folded_implicit(self) -> None:
        """Remove the implicit layers marked folded, and with them their
        runtime operations."""
        raise NotImplementedError


def layer_channels(layer: nn.Module) -> tuple:
    """``(in_channels, out_channels, channel_dim)`` of a conv or Linear."""
    if isinstance(layer, nn.Linear):
        return layer.in_features, layer.out_features, -1
    return layer.in_channels, layer.out_channels, 1


def is_plain(layer: nn.Module) -> bool:
    """Whether ``layer`` computes ``W x + b`` with its weight as stored
    (normalised-weight layers rescale theirs on every call)."""
    return isinstance(layer, PREDICTION_LAYER_TYPES) and not isinstance(
        layer, (NormedConv2d, NormedLinear))


def input_add_folds(layer: nn.Module) -> bool:
    """Whether an add on the input of ``layer`` folds exactly into its bias:
    true for ``nn.Linear`` and 1x1 convs without padding."""
    if isinstance(layer, nn.Linear):
        return True
    return (isinstance(layer, _ConvNd) and not layer.transposed
            and all(k == 1 for k in layer.kernel_size)
            and all(p == 0 for p in layer.padding))


def _ensure_bias(layer: nn.Module) -> Tensor:
    if layer.bias is None:
        out_channels = layer_channels(layer)[1]
        layer.bias = nn.Parameter(layer.weight.new_zeros(out_channels))
    return layer.bias


@torch.no_grad()
def fold_multiply_into_producer(layer: nn.Module, m: Tensor) -> None:
    """``m * layer(x)`` -> ``layer'(x)``: scale the output channels of a
    conv or Linear (``W' = m W``, ``b' = m b``)."""
    weight = layer.weight
    if isinstance(layer, _ConvNd) and layer.transposed:
        # (in, out / groups, *kernel): output channels are the groups' columns
        groups = layer.groups
        grouped = weight.view(groups, weight.shape[0] // groups,
                              weight.shape[1], -1)
        grouped.mul_(m.view(groups, 1, -1, 1))
    else:
        weight.mul_(m.view((-1, ) + (1, ) * (weight.dim() - 1)))
    if layer.bias is not None:
        layer.bias.mul_(m)


@torch.no_grad()
def fold_add_into_consumer(layer: nn.Module, a: Tensor) -> None:
    """``layer(x + a)`` -> ``layer'(x)`` for a layer where
    :func:`input_add_folds` holds: ``b' = b + W a``."""
    weight = layer.weight.flatten(1)  # (out, in / groups) for 1x1 convs
    if isinstance(layer, _ConvNd) and layer.groups > 1:
        groups = layer.groups
        per_group = a.view(groups, -1, 1)
        shifted = torch.bmm(
            weight.view(groups, -1, weight.shape[1]), per_group).flatten()
    else:
        shifted = weight @ a
    _ensure_bias(layer).add_(shifted)


@torch.no_grad()
def fold_add_into_producer(layer: nn.Module, a: Tensor) -> None:
    """``layer(x) + a`` -> ``layer'(x)``: ``b' = b + a``."""
    _ensure_bias(layer).add_(a)
