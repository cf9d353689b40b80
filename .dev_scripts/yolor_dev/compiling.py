# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""How a model fares under ``torch.compile``: frames, graph breaks,
recompiles, and whether the compiled outputs match eager ones.

Counts come from dynamo itself: ``torch._dynamo.utils.counters`` (frames
compiled, graph breaks) and its ``recompiles`` log (one record per
recompilation of a frame whose guards failed). The ``eager`` backend finds
the same frames and breaks as inductor without its compile time.
"""
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List

import torch
import torch._dynamo
from mmengine.structures import BaseDataElement
from torch import Tensor
from torch._dynamo.utils import counters

from mmdet_yolor.stack_api import recompiles_loggers


@dataclass
class CompileCounts:
    """What compiling a function took.

    Attributes:
        frames (int): Python frames dynamo compiled, recompiles included;
            1 for a function captured whole.
        graph_breaks (int): Places where dynamo had to stop a graph and
            resume in a new frame.
        recompiles (int): Frames compiled again because their guards
            failed (a changed Python value, the recompile limit).
        max_error (float): Largest difference between compiled and eager
            outputs, relative to the largest eager value.
    """
    frames: int
    graph_breaks: int
    recompiles: int
    max_error: float


class _Counter(logging.Handler):

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


@contextmanager
def _recompiles_counted() -> Iterator[_Counter]:
    """Count dynamo's recompilations while the block runs."""
    counter = _Counter()
    loggers = recompiles_loggers()
    torch._logging.set_logs(recompiles=True)
    propagates = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(counter)
        logger.propagate = False
    try:
        yield counter
    finally:
        for logger, propagate in zip(loggers, propagates):
            logger.removeHandler(counter)
            logger.propagate = propagate
        torch._logging.set_logs()


def output_tensors(outputs) -> List[Tensor]:
    """The tensors in ``outputs``: nested in lists, tuples and dicts, and
    the data fields of mmengine data elements (a ``DetDataSample``'s
    predictions), in order of their keys."""
    if torch.is_tensor(outputs):
        return [outputs]
    if isinstance(outputs, (BaseDataElement, dict)):
        # by name: a data element keeps its fields in a set
        outputs = [value for _, value in sorted(outputs.items())]
    if isinstance(outputs, (list, tuple)):
        return [tensor for item in outputs for tensor in output_tensors(item)]
    return []


def relative_error(expected: List[Tensor], actual: List[Tensor]) -> float:
    """Largest ``|actual - expected|`` over the tensors, relative to the
    largest ``|expected|``."""
    pairs = [(e.float(), a.float()) for e, a in zip(expected, actual)
             if e.numel()]
    if not pairs:
        return 0.0
    scale = max(float(e.abs().max()) for e, _ in pairs)
    return max(float((a - e).abs().max())
               for e, a in pairs) / max(scale, 1e-12)


def count_compilation(fn: Callable,
                      *args,
                      backend: str = 'eager',
                      calls: int = 2) -> CompileCounts:
    """Compile ``fn`` with ``torch.compile(backend=backend)``, call it
    ``calls`` times on ``args`` (a second call shows recompiles that the
    first left behind) and count what dynamo did.

    Dynamo's caches are reset before, so earlier compilations do not count.
    The tensors ``fn`` returns (:func:`output_tensors`) are compared with
    an eager call.
    """
    with torch.no_grad():
        expected = output_tensors(fn(*args))
        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(fn, backend=backend)
        with _recompiles_counted() as recompiles:
            for _ in range(calls):
                outputs = compiled(*args)
    actual = output_tensors(outputs)
    if len(actual) != len(expected):
        raise RuntimeError(f'the compiled function returned {len(actual)} '
                           f'tensors, the eager one {len(expected)}')
    result = CompileCounts(
        frames=counters['frames']['total'],
        graph_breaks=sum(counters['graph_break'].values()),
        recompiles=recompiles.records,
        max_error=relative_error(expected, actual))
    torch._dynamo.reset()
    return result
