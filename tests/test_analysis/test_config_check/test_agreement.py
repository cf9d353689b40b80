# Copyright (c) mmdet_yolor contributors. All rights reserved.
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from torch import nn

from mmdet_yolor.analysis.config_check import agreement


def predictions(boxes, scores, labels):
    sample = DetDataSample()
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        scores=torch.tensor(scores),
        labels=torch.tensor(labels))
    return [sample]


def test_match_fraction_ignores_order_not_changes():
    before = predictions([[0, 0, 10, 10], [5, 5, 20, 20]], [0.9, 0.5], [1, 2])
    reordered = predictions([[5, 5, 20, 20], [0, 0, 10, 10.1]], [0.5, 0.9],
                            [2, 1])
    assert agreement.match_fraction(before, reordered) == 1.0
    moved = predictions([[5, 5, 20, 20], [0, 0, 12, 10]], [0.5, 0.9], [2, 1])
    assert agreement.match_fraction(before, moved) == 0.5
    fewer = predictions([[0, 0, 10, 10]], [0.9], [1])
    assert agreement.match_fraction(before, fewer) == 0.5


def test_a_match_needs_the_label_and_the_score():
    before = predictions([[0, 0, 10, 10]], [0.9], [1])
    assert agreement.match_fraction(before,
                                    predictions([[0, 0, 10, 10]], [0.9],
                                                [2])) == 0.0
    assert agreement.match_fraction(
        before, predictions([[0, 0, 10, 10]], [0.9005], [1])) == 1.0
    assert agreement.match_fraction(before,
                                    predictions([[0, 0, 10, 10]], [0.91],
                                                [1])) == 0.0


def test_empty_predictions_agree_only_with_empty_ones():
    empty = predictions(torch.zeros(0, 4), [], [])
    one = predictions([[0, 0, 10, 10]], [0.9], [1])
    assert agreement.match_fraction(empty, empty) == 1.0
    assert agreement.match_fraction(empty, one) == 0.0
    assert agreement.match_fraction(one, empty) == 0.0


def test_pixel_maps_count_equal_pixels_and_the_worst_image_decides():

    def semantic(values):
        sample = DetDataSample()
        sample.pred_sem_seg = PixelData(sem_seg=torch.tensor([values]))
        return sample

    before = [semantic([[1, 1], [2, 2]]), semantic([[0, 0], [0, 0]])]
    after = [semantic([[1, 1], [2, 0]]), semantic([[0, 0], [0, 0]])]
    assert agreement.match_fraction(before, after) == 0.75
    assert agreement.match_fraction(before, before) == 1.0


def test_learned_proposals_without_labels_or_scores_are_compared():
    # Sparse R-CNN's embedding RPN gives boxes (and query features) only
    boxes = torch.tensor([[0., 0, 10, 10], [5, 5, 20, 20]])
    same = [[InstanceData(bboxes=boxes.flip(0))]]
    moved = [[InstanceData(bboxes=boxes + torch.tensor([0., 0, 0, 3]))]]
    assert agreement.proposals_agree([[InstanceData(bboxes=boxes)]],
                                     same) == 1.0
    assert agreement.proposals_agree([[InstanceData(bboxes=boxes)]],
                                     moved) == 0.0
    # a model without an RPN records no proposals
    assert agreement.proposals_agree([], []) == 1.0


def test_raw_outputs_agree_within_round_off_only():
    outputs = [torch.tensor([0.5, -2.0]), torch.ones(2, 3)]
    close = [outputs[0] + 1e-5, outputs[1] * (1 + 1e-5)]
    # an implicit left out or folded twice: a change of its size (std 0.02)
    moved = [outputs[0] * 1.02, outputs[1]]
    assert agreement.outputs_agree(outputs, close)
    assert not agreement.outputs_agree(outputs, moved)
    assert not agreement.outputs_agree(outputs, outputs[:1])
    assert agreement.outputs_agree(outputs, None) is None


class TensorModel(nn.Module):
    """Outputs nested tensors in ``mode='tensor'``, or has no such mode."""

    def __init__(self, tensor_mode=True):
        super().__init__()
        self.tensor_mode = tensor_mode

    def data_preprocessor(self, data, training):
        return dict(inputs=torch.stack(data['inputs']).float())

    def forward(self, inputs, mode):
        if not self.tensor_mode:
            raise NotImplementedError('no tensor mode')
        return dict(cls=[inputs * 2, inputs.sum()], reg=(inputs, 'a string'))


def test_raw_outputs_are_the_tensor_leaves_in_eval_mode():
    batch = dict(inputs=[torch.ones(1, 2)], data_samples=[None])
    model = TensorModel()
    outputs = agreement.raw_outputs(model, batch)
    assert not model.training
    assert [tuple(leaf.shape) for leaf in outputs] == [(1, 1, 2), (),
                                                       (1, 1, 2)]
    assert agreement.raw_outputs(TensorModel(tensor_mode=False), batch) is None
