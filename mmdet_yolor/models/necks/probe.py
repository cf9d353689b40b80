# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Read the output levels of a neck or backbone by running it once on
zero inputs built from its config's ``in_channels``, so that any neck gets
one alignment implicit per level whatever attributes it has."""
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ...errors import InputError
from ..wrapping import wrapped_type

# Side of the finest level of the probe inputs of a neck, in pixels; each
# further level halves it, as a backbone's strides do.
NECK_PROBE_SIZE = 64


def _zeros_pyramid(channels: Sequence[int], size: int) -> List[Tensor]:
    return [
        torch.zeros(1, c, max(size >> level, 1), max(size >> level, 1))
        for level, c in enumerate(channels)
    ]


def neck_probe_inputs(neck_cfg: Union[dict, list]) -> List[list]:
    """Candidate inputs of a neck, from the ``in_channels`` of (the first
    of) its config: a pyramid halving from :data:`NECK_PROBE_SIZE` pixels,
    with the channels as listed, then reversed (``YOLOV3Neck`` lists them
    deepest first), then after an image (DetectoRS' ``RFP`` also reads the
    image)."""
    first = neck_cfg[0] if isinstance(neck_cfg, (list, tuple)) else neck_cfg
    in_channels = first.get('in_channels')
    if isinstance(in_channels, int):
        levels = first.get('num_levels', 1)
        return [_zeros_pyramid([in_channels] * levels, NECK_PROBE_SIZE)]
    if not isinstance(in_channels, (list, tuple)):
        return []
    pyramid = _zeros_pyramid(in_channels, NECK_PROBE_SIZE)
    image = torch.zeros(1, 3, NECK_PROBE_SIZE * 4, NECK_PROBE_SIZE * 4)
    return [
        pyramid,
        _zeros_pyramid(in_channels[::-1], NECK_PROBE_SIZE), [image] + pyramid
    ]


@torch.no_grad()
def probe_output_channels(module: nn.Module, candidates: list) -> List[int]:
    """Run ``module`` (in eval mode, restored afterwards) on each candidate
    input (the argument of its forward) until one works; return the
    channels of each output level.

    Raises:
        RuntimeError: If no candidate runs, with the last error.
    """
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    errors = []
    try:
        for inputs in candidates:
            try:
                outs = wrapped_type(module).forward(module, inputs)
            except Exception as error:  # the input did not fit: next one
                errors.append(error)
                continue
            if isinstance(outs, Tensor):
                outs = [outs]
            return [out.shape[1] for out in outs]
    finally:
        for m, training in modes:
            m.training = training
    # the first candidate is the usual input: its error says most
    raise RuntimeError(f'{type(errors[0]).__name__}: {errors[0]}' if errors
                       else 'it has no in_channels to build them from')


def output_level_channels(
        wrapper: str, module: nn.Module, candidates: list,
        levels: Optional[int], channels: Union[int, Sequence[int],
                                               None]) -> List[int]:
    """The channels of each output level of ``module``, read from a probe
    run on ``candidates``; ``levels`` (their number) and ``channels`` (of
    every level, or of each), where given, take precedence, and when both
    are given no probe runs.

    Raises:
        InputError: If the probe fails, saying how to give them instead.
    """
    if isinstance(channels, (list, tuple)):
        return list(channels)
    if levels is not None and channels is not None:
        return [channels] * levels
    try:
        probed = probe_output_channels(module, candidates)
    except RuntimeError as error:
        raise InputError(
            f'{wrapper} could not tell the output levels of '
            f'{wrapped_type(module).__name__}: running it on probe inputs '
            f'built from its in_channels failed ({error}). Pass '
            f'alignment_levels=... and alignment_channels=... to '
            f'{wrapper}.') from None
    if channels is not None:
        return [channels] * len(probed)
    if levels is not None:
        return [probed[min(level, len(probed) - 1)] for level in range(levels)]
    return probed
