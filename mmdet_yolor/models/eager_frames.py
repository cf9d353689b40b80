# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Which of YOLOR's code dynamo runs eagerly where it meets it on its own.

Code that YOLOR runs around an mmdet layer (a refined prediction layer's
forward, its implicits, a level owner's bookkeeping) is marked
:func:`eager_at_top_level`: dynamo inlines it into the frames it traces, as
any code, but runs it eagerly where mmdet's code reaches it from a frame
that dynamo runs eagerly, as it runs ``torch.nn``'s own layers there (a head
whose forward falls back to eager after a graph break: TOOD). Compiled
there, each such function would be frames and recompiles of its own that
the baseline's plain layers do not cost (12 frames more than TOOD's
baseline on torch 2.13).
"""
from typing import Callable, List

from .. import stack_api

# The functions marked eager_at_top_level, and those of them whose code
# skip_dynamo_frames has marked for dynamo.
_EAGER_AT_TOP_LEVEL: List[Callable] = []
_MARKED: List[Callable] = []
# The stack's probe of tracing (stack_api.compiling_probe), once found.
_COMPILING_PROBE: List[Callable[[], bool]] = []


def eager_at_top_level(function: Callable) -> Callable:
    """Decorator: dynamo runs ``function`` eagerly when it is called from
    code that dynamo runs eagerly, and still inlines it into the frames it
    traces (see module docstring). Takes effect once
    :func:`skip_dynamo_frames` has run (building an implicit layer runs
    it)."""
    _EAGER_AT_TOP_LEVEL.append(function)
    return function


def skip_dynamo_frames() -> None:
    """Have dynamo skip the frames of the :func:`eager_at_top_level`
    functions: where it meets one as a frame of its own, it runs it
    eagerly, as it does a ``torch.nn`` layer's ``forward``; inlining is
    untouched. Without dynamo's skip (:func:`~mmdet_yolor.stack_api.
    dynamo_skip_code`) nothing is marked: the frames compile, correct but
    more. Imports dynamo on its first call (about 1 s), not at import."""
    if not _COMPILING_PROBE:
        # marked too: torch 2.1 compiles torch._dynamo.is_compiling as a
        # frame of its own where code run eagerly calls it
        _COMPILING_PROBE.append(
            eager_at_top_level(stack_api.compiling_probe()))
    pending = [f for f in _EAGER_AT_TOP_LEVEL if f not in _MARKED]
    if not pending:
        return
    skip_code = stack_api.dynamo_skip_code()
    for function in pending:
        if skip_code is not None:
            skip_code(function.__code__)
        _MARKED.append(function)


@eager_at_top_level
def is_compiling() -> bool:
    """Whether dynamo traces the caller (a constant True in the frames it
    compiles), for the marked code: it calls no frame of its own either."""
    if not _COMPILING_PROBE:
        skip_dynamo_frames()
    return _COMPILING_PROBE[0]()
