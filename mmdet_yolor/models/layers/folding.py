"""Rules that fold an implicit value into a neighbouring layer.

``g(z)`` does not depend on the input, so after training it is a constant
that the layer next to it can absorb (paper section 4.4). For a convolution
(any dimension, transposed too) or Linear computing ``y = W x + b``, each
rule is a pure function of tensors, as torch's ``fuse_conv_bn_weights``:

- :func:`multiply_into_producer`: ``m * (W x + b)`` -> ``W' = m W``,
  ``b' = m b``; exact for any such layer.
- :func:`add_into_consumer`: ``W (x + a) + b`` -> ``b' = b + W a``; exact
  for Linear and unpadded 1x1 convs only (a padded kxk conv sees the
  constant only inside its zero border, a transposed conv at its overlaps).
- :func:`add_into_producer`: ``(W x + b) + a`` -> ``b' = b + a``; exact
  when nothing (norm, activation) comes between the layer and the add.

``fold_*`` apply them to a layer in place. The modules that own implicit
layers (the YOLOR neck, backbone and prediction-layer mixins) decide which
rule applies where (``FoldableMixin`` in :mod:`..foldable`).
"""
from typing import Optional, Tuple

import torch
from mmdet.models.layers import NormedConv2d, NormedLinear
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

# The layers whose output or input an implicit can refine.
PREDICTION_LAYER_TYPES = (_ConvNd, nn.Linear)


def multiply_into_producer(
    weight: Tensor,
    bias: Optional[Tensor],
    m: Tensor,
    transposed_groups: Optional[int] = None
) -> Tuple[Tensor, Optional[Tensor]]:
    """``m * (W x + b)`` as ``W' x + b'``.

    Args:
        weight (Tensor): ``(out, in / groups, *kernel)``, or for a transposed
            conv ``(in, out / groups, *kernel)``.
        bias (Tensor, optional): ``(out, )``.
        m (Tensor): The multiplier, ``(out, )``.
        transposed_groups (int, optional): The groups of a transposed conv;
            None for a conv or Linear.

    Returns:
        tuple: ``W'`` and ``b'`` (None without a bias).
    """
    if transposed_groups is None:
        weight = weight * m.view((-1, ) + (1, ) * (weight.dim() - 1))
    else:
        # output channels are the groups' columns
        grouped = weight.reshape(transposed_groups,
                                 weight.shape[0] // transposed_groups,
                                 weight.shape[1], -1)
        weight = (grouped * m.view(transposed_groups, 1, -1, 1)).reshape(
            weight.shape)
    return weight, None if bias is None else bias * m


def add_into_consumer(weight: Tensor,
                      bias: Optional[Tensor],
                      a: Tensor,
                      groups: int = 1) -> Tensor:
    """``W (x + a) + b`` as ``W x + b'`` for a Linear or unpadded 1x1 conv
    of weight ``(out, in / groups, 1...)``: returns ``b' = b + W a``,
    ``(out, )``."""
    weight = weight.flatten(1)  # (out, in / groups)
    shifted = torch.bmm(
        weight.view(groups, -1, weight.shape[1]), a.view(groups, -1,
                                                         1)).flatten()
    return shifted if bias is None else bias + shifted


def add_into_producer(bias: Optional[Tensor], a: Tensor) -> Tensor:
    """``(W x + b) + a`` as ``W x + b'``: returns ``b' = b + a``."""
    return a.clone() if bias is None else bias + a


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


def _set_bias(layer: nn.Module, bias: Tensor) -> None:
    if layer.bias is None:
        layer.bias = nn.Parameter(bias)
    else:
        layer.bias.copy_(bias)


@torch.no_grad()
def fold_multiply_into_producer(layer: nn.Module, m: Tensor) -> None:
    """``m * layer(x)`` -> ``layer'(x)``, in place
    (:func:`multiply_into_producer`)."""
    transposed = isinstance(layer, _ConvNd) and layer.transposed
    weight, bias = multiply_into_producer(layer.weight, layer.bias, m,
                                          layer.groups if transposed else None)
    layer.weight.copy_(weight)
    if bias is not None:
        layer.bias.copy_(bias)


@torch.no_grad()
def fold_add_into_consumer(layer: nn.Module, a: Tensor) -> None:
    """``layer(x + a)`` -> ``layer'(x)``, in place, for a layer where
    :func:`input_add_folds` holds (:func:`add_into_consumer`)."""
    groups = layer.groups if isinstance(layer, _ConvNd) else 1
    _set_bias(layer, add_into_consumer(layer.weight, layer.bias, a, groups))


@torch.no_grad()
def fold_add_into_producer(layer: nn.Module, a: Tensor) -> None:
    """``layer(x) + a`` -> ``layer'(x)``, in place
    (:func:`add_into_producer`)."""
    _set_bias(layer, add_into_producer(layer.bias, a))
