# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Whether folding kept what a model computes: its predictions matched as
sets, its proposals, and its raw tensor outputs."""
import copy
from typing import List, Optional

import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ...stack_api import tree_leaves
from .inputs import eval_batch

# Share of the predictions (and proposals) folding must keep: float rounding
# may flip near-ties at a top-k or NMS cut, a wrong fold changes them all.
MIN_AGREEMENT = 0.95


def match_fraction(before: List[DetDataSample],
                   after: List[DetDataSample],
                   box_tol: float = 0.5,
                   score_tol: float = 1e-3) -> float:
    """How much of two models' predictions agree, in [0, 1].

    Detections are matched as sets, not in order (NMS and top-k may order
    near-ties differently): one matches if the other side has one with the
    same label, a score within ``score_tol`` and box corners within
    ``box_tol`` pixels. Pixel maps (semantic, panoptic) count the share of
    equal pixels. The result is the worst of the images and kinds.
    """
    fractions = []
    for first, second in zip(before, after):
        if 'pred_instances' in first:
            fractions.append(
                _instances_agree(first.pred_instances, second.pred_instances,
                                 box_tol, score_tol))
        for key in ('pred_sem_seg', 'pred_panoptic_seg'):
            if key in first:
                fractions.append(
                    float((first.get(key).sem_seg == second.get(key).sem_seg
                           ).float().mean()))
    return min(fractions, default=1.0)


def _instances_agree(first: InstanceData, second: InstanceData, box_tol: float,
                     score_tol: float) -> float:
    total = max(len(first), len(second))
    if total == 0:
        return 1.0
    if not len(first) or not len(second):
        return 0.0
    # proposals of a learned RPN (Sparse R-CNN's embeddings) have no labels
    # or scores
    close = torch.ones(len(first), len(second), dtype=torch.bool)
    if 'labels' in first:
        close &= first.labels[:, None] == second.labels[None]
    if 'scores' in first:
        close &= (first.scores[:, None] -
                  second.scores[None]).abs() <= score_tol
    if 'bboxes' in first:
        boxes = (first.bboxes[:, None] - second.bboxes[None]).abs()
        close &= boxes.amax(-1) <= box_tol
    matched = min(int(close.any(1).sum()), int(close.any(0).sum()))
    return matched / total


@torch.no_grad()
def raw_outputs(model: nn.Module, batch: dict) -> Optional[List[Tensor]]:
    """``model``'s ``mode='tensor'`` outputs for ``batch`` in eval mode,
    flattened; None where the model has no tensor mode (or it fails)."""
    model.eval()
    data = model.data_preprocessor(copy.deepcopy(eval_batch(batch)), False)
    try:
        outputs = model(**data, mode='tensor')
    except Exception:
        return None
    return [leaf for leaf in tree_leaves(outputs) if torch.is_tensor(leaf)]


def outputs_agree(first: Optional[List[Tensor]],
                  second: Optional[List[Tensor]]) -> Optional[bool]:
    """Whether two :func:`raw_outputs` agree within 1e-3 (None if either
    is None)."""
    if first is None or second is None:
        return None
    return len(first) == len(second) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=1e-3, atol=1e-3)
        for a, b in zip(first, second))


def proposals_agree(first: List[List[InstanceData]],
                    second: List[List[InstanceData]]) -> float:
    """:func:`match_fraction` of two recordings of
    :func:`~.stages.replay_proposals`."""
    fractions = [
        _instances_agree(a, b, box_tol=0.5, score_tol=1e-3)
        for calls in zip(first, second) for a, b in zip(*calls)
    ]
    return min(fractions, default=1.0)
