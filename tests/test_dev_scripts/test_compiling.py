# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch

from yolor_dev.compiling import (count_compilation, output_tensors,
                                 relative_error)


def test_a_function_captured_whole_is_one_frame():
    counts = count_compilation(lambda x: (x * 2).relu(), torch.randn(4))
    assert (counts.frames, counts.graph_breaks, counts.recompiles) == (1, 0, 0)
    assert counts.max_error == 0


def test_graph_breaks_and_recompiles_are_counted():

    calls = [0]

    def fn(x):
        y = x + 1
        print(end='')  # not traceable: a graph break, the rest resumes
        calls[0] += 1
        # a Python value that changes between calls: a guard fails and the
        # resumed frame compiles again (a list item: torch 2.4 guards no
        # class attribute changed so)
        return y * calls[0]

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


def test_predictions_of_data_samples_are_compared():
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    # built outside the graph: torch 2.4's dynamo cannot create mmengine
    # data elements
    @torch._dynamo.disable
    def sample(scores, labels):
        sample = DetDataSample()
        sample.pred_instances = InstanceData(scores=scores, labels=labels)
        return sample

    def predict(x):
        return [sample(x * 2, x.long())]

    counts = count_compilation(predict, torch.ones(3))
    assert counts.max_error == 0
    # fields in order of their names: labels, scores
    labels, scores = output_tensors(predict(torch.ones(3)))
    assert labels.tolist() == [1, 1, 1] and scores.tolist() == [2, 2, 2]
