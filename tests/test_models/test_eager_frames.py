# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""eager_at_top_level: dynamo runs YOLOR's marked code eagerly where it
meets it as a frame of its own, and inlines it into the frames it traces."""
import torch

from mmdet_yolor.models.eager_frames import (eager_at_top_level,
                                             skip_dynamo_frames)
from yolor_dev.compiling import count_compilation


@eager_at_top_level
def marked(x):
    return x * 2 + 1


def unmarked(x):
    return x * 2 + 1


def calls_marked(x):
    return marked(x).relu()


def test_marked_function_on_its_own_runs_eagerly():
    skip_dynamo_frames()
    counts = count_compilation(marked, torch.randn(4))
    assert counts.frames == 0 and counts.max_error == 0
    # the same code unmarked is a frame of its own
    assert count_compilation(unmarked, torch.randn(4)).frames == 1


def test_marked_function_is_inlined_where_dynamo_traces():
    skip_dynamo_frames()
    counts = count_compilation(calls_marked, torch.randn(4))
    assert (counts.frames, counts.graph_breaks, counts.recompiles) == (1, 0, 0)
    assert counts.max_error == 0


def test_marked_functions_hold_no_frames_of_their_own():
    """A comprehension or generator in marked code is a code object of its
    own: run eagerly, its frame is one dynamo tries to compile (a
    generator's fails), which the baseline does not cost."""
    import types

    import mmdet_yolor.models  # noqa: F401  (marks YOLOR's functions)
    from mmdet_yolor.models import eager_frames
    assert eager_frames._EAGER_AT_TOP_LEVEL
    nested = {
        function.__qualname__: [
            const.co_name for const in function.__code__.co_consts
            if isinstance(const, types.CodeType)
        ]
        for function in eager_frames._EAGER_AT_TOP_LEVEL
    }
    assert {name: codes for name, codes in nested.items() if codes} == {}
