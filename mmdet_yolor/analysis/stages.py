# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""A detector's outputs stage by stage, with a two-stage detector's RPN
proposals recorded and replayed.

Comparing two models through a two-stage detector depends on the machine:
a round-off-sized change of RPN scores changes which proposals survive the
RPN's top-k and NMS, and the RoI outputs of those differ wholesale. So the
proposals are compared on their own, and the second model's RoI head runs
on the first model's proposals (:func:`replay_proposals`).
"""
import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import EmbeddingRPNHead
from torch import Tensor, nn

from ..stack_api import tree_leaves


@contextmanager
def replay_proposals(model: nn.Module,
                     replay: Optional[list] = None) -> Iterator[list]:
    """Record the proposals of ``model.rpn_head`` while the block runs, and
    with ``replay`` (proposals recorded before) hand those on instead of
    the new ones.

    Yields:
        list: The proposals of each ``rpn_head.predict`` call (none for a
        model without an RPN).
    """
    recorded = []
    rpn = getattr(model, 'rpn_head', None)
    if rpn is None:
        yield recorded
        return
    original = rpn.predict

    def predict(*args, **kwargs):
        # copies: the RoI head may take fields out of its proposals
        proposals = original(*args, **kwargs)
        recorded.append(copy.deepcopy(proposals))
        if replay is None:
            return proposals
        return copy.deepcopy(replay[len(recorded) - 1])

    rpn.predict = predict
    try:
        yield recorded
    finally:
        del rpn.predict


@torch.no_grad()
def stage_outputs(
    model: nn.Module,
    data: dict,
    proposals: Optional[list] = None
) -> Tuple[Dict[str, List[Tensor]], Optional[list]]:
    """The tensors a detector computes, stage by stage, in eval mode.

    Args:
        model (nn.Module): A single- or two-stage mmdet detector.
        data (dict): Its ``data_preprocessor`` output.
        proposals (list[InstanceData], optional): Proposals for the RoI
            head (another model's); by default the model's own.

    Returns:
        tuple: ``{stage: tensors}`` for ``'neck'`` (the features),
        ``'rpn'``, ``'roi'`` or ``'head'``, and the proposals used.
    """
    samples = data['data_samples']
    features = model.extract_feat(data['inputs'])
    outputs = dict(neck=list(features))
    if not getattr(model, 'with_rpn', False) and not hasattr(
            model, 'roi_head'):
        outputs['head'] = tree_leaves(model.bbox_head.forward(features))
        return outputs, None
    if not isinstance(model.rpn_head, EmbeddingRPNHead):
        outputs['rpn'] = tree_leaves(model.rpn_head.forward(features))
    replay = None if proposals is None else [proposals]
    with replay_proposals(model, replay):
        used = model.rpn_head.predict(features, samples, rescale=False)
    # a copy: Sparse R-CNN's RoI head pops the proposal features
    outputs['roi'] = tree_leaves(
        model.roi_head.forward(features, copy.deepcopy(used), samples))
    return outputs, used
