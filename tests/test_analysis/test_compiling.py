# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch

from mmdet_yolor.analysis.compiling import count_compilation, relative_error


def test_a_function_captured_whole_is_one_frame():
    counts = count_compilation(lambda x: (x * 2).relu(), torch.randn(4))
    assert (counts.frames, counts.graph_breaks, counts.recompiles) == (1, 0, 0)
    assert counts.max_error == 0


def test_graph_breaks_and_recompiles_are_counted():

    class Counter:
        calls = 0

    def fn(x):
        y = x + 1
        print(end='')  # not traceable: a graph break, the rest resumes
        Counter.calls += 1
        # a Python value that changes between calls: a guard fails and the
        # resumed frame compiles again
        return y * Counter.calls

    counts = count_compilation(fn, torch.randn(3), calls=3)
    assert counts.graph_breaks >= 1
    assert counts.recompiles >= 1
    assert counts.frames >= 3


def test_outputs_that_differ_from_eager_show_in_the_error():
    state = {'scale': 1.0}

    def fn(x):
        state['scale'] += 1e-3  # each call, eager and compiled, scales more
        return x * state['scale']

    counts = count_compilation(fn, torch.ones(2), calls=1)
    assert counts.max_error == pytest.approx(1e-3 / 1.001, rel=1e-3)


def test_relative_error_is_relative_to_the_largest_value():
    expected = [torch.tensor([10.0, -20.0]), torch.tensor([1.0])]
    actual = [torch.tensor([10.0, -20.0]), torch.tensor([1.2])]
    assert relative_error(expected, actual) == pytest.approx(0.2 / 20)
