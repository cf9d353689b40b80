# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fold implicit knowledge into neighbouring layers for inference.

``g(z)`` does not depend on the input, so after training it is a constant
that can be folded into the layer next to it (paper section 4.4). One
function per folding rule:

- :func:`fold_multiply_into_producer`: ``m * (W x + b)`` -> ``W' = m W``,
  ``b' = m b``; exact for any conv or Linear.
- :func:`fold_add_into_consumer`: ``W (x + a) + b`` -> ``b' = b + W a``;
  exact for Linear and unpadded 1x1 convs only (a padded kxk conv sees the
  constant only inside its zero border).
- :func:`fold_add_into_producer`: ``(W x + b) + a`` -> ``b' = b + a``; exact
  for a conv with no norm or activation after it (FPN's output convs).

Where no rule is exact the runtime operation is kept: per-level implicits on
a layer shared by every pyramid level, an add before a padded kxk conv, and
neck levels whose output the neck reuses to derive the next level.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.models.layers import NormedConv2d, NormedLinear
from mmengine.logging import print_log
from torch import Tensor, nn

from ..models.heads.yolor_head import (YOLORHeadMixin, _add_implicit_to_input,
                                       _multiply_implicit_onto_output,
                                       input_add_folds)
from ..models.layers import BaseImplicit, ImplicitA, ImplicitM
from ..models.necks.yolor_neck import (YOLORNeckMixin, _align_output,
                                       find_output_convs)
from ..models.wrapping import wrapped_type


@dataclass
class FoldSite:
    """What happened to one implicit layer.

    Attributes:
        name (str): Module path of the implicit layer in the model.
        folded (bool): Whether its value now lives in a neighbouring layer.
        how (str): The rule that folded it, or why it was kept.
        owner (nn.Module): The module holding the implicit layer, as
            ``owner.<attribute>`` or ``owner.<attribute>[index]``.
    """
    name: str
    folded: bool
    how: str
    owner: nn.Module = field(repr=False, compare=False)
    attribute: str = field(repr=False, compare=False)
    index: Optional[int] = field(default=None, repr=False, compare=False)


@dataclass
class FuseReport:
    """The :class:`FoldSite` of every implicit layer of a model."""
    sites: List[FoldSite]

    @property
    def complete(self) -> bool:
        """Whether every implicit was folded (the model is then a plain mmdet
        model with different weights)."""
        return all(site.folded for site in self.sites)

    def format(self) -> str:
        """A summary line and one line per implicit."""
        folded = sum(site.folded for site in self.sites)
        lines = [f'folded {folded} of {len(self.sites)} implicit layers']
        for site in self.sites:
            state = 'folded' if site.folded else 'kept  '
            lines.append(f'  {state} {site.name}: {site.how}')
        return '\n'.join(lines)


def _plain_layer(layer: nn.Module) -> bool:
    """A conv or Linear computing ``W x + b`` with its weight as stored."""
    return isinstance(layer, (nn.Conv2d, nn.Linear)) and not isinstance(
        layer, (NormedConv2d, NormedLinear))


@torch.no_grad()
def fold_multiply_into_producer(layer: nn.Module, m: Tensor) -> None:
    """``m * layer(x)`` -> ``layer'(x)``: scale the output channels of a conv
    or Linear (``W' = m W``, ``b' = m b``)."""
    shape = (-1, ) + (1, ) * (layer.weight.dim() - 1)
    layer.weight.mul_(m.view(shape))
    if layer.bias is not None:
        layer.bias.mul_(m)


def _ensure_bias(layer: nn.Module) -> Tensor:
    if layer.bias is None:
        layer.bias = nn.Parameter(
            layer.weight.new_zeros(layer.weight.shape[0]))
    return layer.bias


@torch.no_grad()
def fold_add_into_consumer(layer: nn.Module, a: Tensor) -> None:
    """``layer(x + a)`` -> ``layer'(x)`` for a Linear or unpadded 1x1 conv:
    ``b' = b + W a``."""
    weight = layer.weight.flatten(1)  # (out, in) for Linear and 1x1 convs
    _ensure_bias(layer).add_(weight @ a)


@torch.no_grad()
def fold_add_into_producer(conv: nn.Conv2d, a: Tensor) -> None:
    """``conv(x) + a`` -> ``conv'(x)``: ``b' = b + a``."""
    _ensure_bias(conv).add_(a)


def _value(implicit: BaseImplicit) -> Tensor:
    return implicit.representation().detach()


def _fold_prediction_layer(name: str, layer: nn.Module) -> List[FoldSite]:
    """Fold the ImplicitA/ImplicitM pair(s) of one prediction layer."""
    adds = list(getattr(layer, 'implicit_a', ()))
    multiplies = list(layer.implicit_m)

    def site(attribute, index, folded, how):
        return FoldSite(f'{name}.{attribute}.{index}', folded, how, layer,
                        attribute, index)

    kept_why = None
    if len(multiplies) > 1:
        kept_why = ('per-level implicits on a layer shared by every level '
                    '(train with share_across_levels=True to fold them)')
    elif not _plain_layer(layer):
        kept_why = f'{type(layer).__name__} normalises its weights'
    if kept_why:
        return [
            site('implicit_a', i, False, kept_why) for i in range(len(adds))
        ] + [
            site('implicit_m', i, False, kept_why)
            for i in range(len(multiplies))
        ]
    sites = []
    # the add comes first: m * (W (x + a) + b) = (m W) x + m (b + W a)
    if adds and input_add_folds(layer):
        fold_add_into_consumer(layer, _value(adds[0]))
        adds[0].make_identity()
        sites.append(
            site('implicit_a', 0, True, 'add folded into bias (b += W a)'))
    elif adds:
        kernel = 'x'.join(map(str, layer.kernel_size))
        sites.append(
            site(
                'implicit_a', 0, False, f'add before a padded {kernel} '
                'conv: exact only inside the zero border'))
    fold_multiply_into_producer(layer, _value(multiplies[0]))
    multiplies[0].make_identity()
    sites.append(
        site('implicit_m', 0, True,
             'multiply folded into weight and bias (W *= m, b *= m)'))
    return sites


def fpn_level_producers(
        neck: nn.Module) -> List[Tuple[Optional[nn.Module], str]]:
    """For each output level of an mmdet ``FPN``: the ConvModule producing it
    when an alignment of that level can move into the conv, else None and
    why not.

    A level the FPN reuses to derive the next one (the source of its extra
    convs or max-pooled levels) cannot be changed without changing that next
    level; a max-pooled level has no conv.
    """
    used = neck.backbone_end_level - neck.start_level
    extras = range(used, neck.num_outs)
    sources = set(range(used, neck.num_outs - 1))
    if len(extras) and neck.add_extra_convs in (False, 'on_output'):
        sources.add(used - 1)
    producers = []
    for level in range(neck.num_outs):
        if level in extras and not neck.add_extra_convs:
            producers.append((None, 'max-pooled level: no conv to fold into'))
        elif level in sources:
            producers.append(
                (None, f'the FPN derives level {level + 1} from this output'))
        else:
            producers.append((neck.fpn_convs[level], ''))
    return producers


# Folding rules of necks with placement='outputs', by neck type (looked up
# along the class hierarchy).
NECK_LEVEL_PRODUCERS = {
    'FPN': fpn_level_producers,
}


def _fold_into_output_conv(conv: nn.Module, implicit: BaseImplicit) -> str:
    """Fold an alignment on the output of ``conv`` (a ConvModule or conv);
    return why it cannot be folded, or '' when it was."""
    if isinstance(conv, ConvModule):
        if conv.with_norm or conv.with_activation:
            return 'the output conv has a norm or activation after it'
        conv = conv.conv
    if not _plain_layer(conv):
        return f'{type(conv).__name__} is not a plain conv'
    if isinstance(implicit, ImplicitA):
        fold_add_into_producer(conv, _value(implicit))
    elif isinstance(implicit, ImplicitM):
        fold_multiply_into_producer(conv, _value(implicit))
    else:
        return 'concatenation adds channels: no layer to fold into'
    implicit.make_identity()
    return ''


def _fold_neck(name: str, neck: nn.Module) -> List[FoldSite]:
    folded_how = 'folded into the bias or weight of the conv producing it'
    if neck.yolor_placement == 'output_convs':
        convs_name = find_output_convs(type(neck))
        sites = []
        for level, conv in enumerate(getattr(neck, convs_name)):
            if not hasattr(conv, 'implicit_alignment'):
                continue  # folded and stripped before
            why = _fold_into_output_conv(conv, conv.implicit_alignment)
            sites.append(
                FoldSite(f'{name}.{convs_name}.{level}.implicit_alignment',
                         not why, why or folded_how, conv,
                         'implicit_alignment'))
        return sites

    neck_type = wrapped_type(neck)
    rule = next(
        (NECK_LEVEL_PRODUCERS[cls.__name__]
         for cls in neck_type.__mro__ if cls.__name__ in NECK_LEVEL_PRODUCERS),
        None)
    if rule is None:
        producers = [(None, f'no folding rule for {neck_type.__name__}')
                     ] * len(neck.implicit_alignment)
    else:
        producers = rule(neck)
    sites = []
    for level, (conv, why) in enumerate(producers):
        if not isinstance(neck.implicit_alignment[level], BaseImplicit):
            continue  # folded and stripped before
        if conv is not None:
            why = _fold_into_output_conv(conv, neck.implicit_alignment[level])
        sites.append(
            FoldSite(f'{name}.implicit_alignment.{level}', not why, why
                     or folded_how, neck, 'implicit_alignment', level))
    return sites


def fold_implicit(model: nn.Module) -> FuseReport:
    """Fold every implicit layer of ``model`` whose folding is exact into
    its neighbouring layer and set it to identity (add 0, multiply 1), in
    place. The model computes the same outputs as before (up to float
    rounding); the folded implicits still run until :func:`strip_folded`.
    """
    sites = []
    for name, module in model.named_modules():
        if isinstance(module, YOLORNeckMixin):
            sites += _fold_neck(name, module)
        elif isinstance(module, YOLORHeadMixin):
            for layer_name in module.yolor_prediction_layers:
                sites += _fold_prediction_layer(f'{name}.{layer_name}',
                                                getattr(module, layer_name))
    return FuseReport(sites)


def _remove_hook(hooks: Dict[int, object], function) -> None:
    for key in [key for key, hook in hooks.items() if hook is function]:
        del hooks[key]


# The forward hook that applies each kind of implicit layer, by the
# attribute that holds it.
_HOOKS = {
    'implicit_a': ('_forward_pre_hooks', _add_implicit_to_input),
    'implicit_m': ('_forward_hooks', _multiply_implicit_onto_output),
    'implicit_alignment': ('_forward_hooks', _align_output),
}


def strip_folded(model: nn.Module, report: FuseReport) -> None:
    """Remove the implicit layers that :func:`fold_implicit` folded, with
    their forward hooks. A folded neck output level gets an Identity."""
    for site in report.sites:
        if not site.folded:
            continue
        if isinstance(site.owner, YOLORNeckMixin):  # placement='outputs'
            site.owner.implicit_alignment[site.index] = nn.Identity()
            continue
        delattr(site.owner, site.attribute)
        hooks, function = _HOOKS[site.attribute]
        _remove_hook(getattr(site.owner, hooks), function)
    # heads forget the prediction layers that carry nothing any more
    for module in model.modules():
        if isinstance(module, YOLORHeadMixin):
            module.yolor_prediction_layers = tuple(
                name for name in module.yolor_prediction_layers
                if hasattr(getattr(module, name), 'implicit_m')
                or hasattr(getattr(module, name), 'implicit_a'))


def fuse_implicit(model: nn.Module, logger: str = 'current') -> nn.Module:
    """Fold implicit knowledge into the neighbouring layers of ``model`` for
    inference, in place, and log what was folded and what was kept.

    Returns:
        nn.Module: ``model``, computing the same outputs (within float
        rounding) without the runtime operations of the folded implicits.
    """
    report = fold_implicit(model)
    strip_folded(model, report)
    print_log(report.format(), logger=logger)
    return model
