# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Where FPN's feature alignment folds at inference: the rules for
``YOLORNeck``'s placements.

With ``placement='outputs'`` an output level's implicit folds into the conv
producing that level when the neck uses the level for nothing else
(:data:`LEVEL_PRODUCERS`); with ``placement='output_convs'`` the implicits
sit on those convs (:data:`NECK_OUTPUT_CONVS`) and every one folds.
"""
from typing import Callable, Dict, List, Optional, Union

from mmcv.cnn import ConvModule
from mmdet.models.necks import FPN
from torch import nn

from ..class_tables import lookup_by_class
from ..layers import BaseImplicit, ImplicitA, ImplicitM
from ..layers.folding import (fold_add_into_producer,
                              fold_multiply_into_producer, is_plain)

FOLDED_HOW = 'folded into the bias or weight of the conv producing it'

# For placement='output_convs': the attribute holding the convs that produce
# a neck type's output levels, looked up along the class hierarchy.
NECK_OUTPUT_CONVS: Dict[type, str] = {
    FPN: 'fpn_convs',
}


def find_output_convs(neck_type: type) -> Optional[str]:
    """Return the :data:`NECK_OUTPUT_CONVS` entry of ``neck_type`` or of its
    nearest listed base class."""
    return lookup_by_class(NECK_OUTPUT_CONVS, neck_type)


def fold_into_output_conv(conv: nn.Module, implicit: BaseImplicit) -> str:
    """Fold an alignment on the output of ``conv`` (a ConvModule or conv)
    into it; return why it cannot be folded, or '' when it was."""
    if isinstance(conv, ConvModule):
        if conv.with_norm or conv.with_activation:
            return 'the output conv has a norm or activation after it'
        conv = conv.conv
    if not is_plain(conv):
        return f'{type(conv).__name__} is not a plain conv'
    if isinstance(implicit, ImplicitA):
        fold_add_into_producer(conv, implicit.value())
    elif isinstance(implicit, ImplicitM):
        fold_multiply_into_producer(conv, implicit.value())
    else:
        return 'concatenation adds channels: no layer to fold into'
    implicit.mark_folded()
    return ''


def fpn_level_producers(neck: FPN) -> List[Union[nn.Module, str]]:
    """For each output level of an mmdet ``FPN``: the ConvModule producing
    it when an alignment of that level can move into the conv, else why
    not.

    A level the FPN reuses to derive the next one (the source of its extra
    convs or max-pooled levels) cannot change without changing that next
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
            producers.append('max-pooled level: no conv to fold into')
        elif level in sources:
            producers.append(
                f'the FPN derives level {level + 1} from this output')
        else:
            producers.append(neck.fpn_convs[level])
    return producers


# How the output levels of a neck type are produced, for folding the
# alignment of placement='outputs', keyed by the class whose ``forward``
# the neck runs: a subclass that overrides it (PAFPN adds a bottom-up path
# after ``fpn_convs``, RFP feeds its outputs back into the backbone) has
# outputs these rules do not describe, and keeps its implicits.
LEVEL_PRODUCERS: Dict[type, Callable[[nn.Module], list]] = {
    FPN: fpn_level_producers,
}
