# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""A detector's outputs stage by stage, and the recorded and replayed RPN
proposals that let two two-stage detectors be compared on the same
proposals."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.structures import InstanceData
from torch import nn

from mmdet_yolor.analysis.stages import replay_proposals, stage_outputs
from mmdet_yolor.config_edits import strip_pretrained
from mmdet_yolor.package_data import get_config
from mmdet_yolor.stack_api import tree_leaves

from yolor_testing import shrink_zoo_config, tiny_fcos_config


def build(model_cfg, seed=0):
    torch.manual_seed(seed)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model.eval()


def data(model):
    packed = demo_mm_inputs(
        batch_size=1, image_shapes=[(3, 128, 160)], num_items=[2])
    return model.data_preprocessor(packed, False)


@pytest.fixture(scope='module')
def faster_rcnn_cfg():
    model_cfg = shrink_zoo_config(
        get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')).model
    strip_pretrained(model_cfg)  # no download
    return model_cfg


def test_a_single_stage_detector_gives_its_features_and_head_outputs():
    model = build(tiny_fcos_config('data', 'work').model)
    batch = data(model)
    outputs, proposals = stage_outputs(model, batch)
    assert proposals is None
    assert list(outputs) == ['neck', 'head']
    with torch.no_grad():
        features = model.extract_feat(batch['inputs'])
        head = tree_leaves(model.bbox_head.forward(features))
    assert len(outputs['neck']) == len(features) == 5
    for e, a in zip(features, outputs['neck']):
        assert torch.equal(a, e)
    # classification, regression and centerness of each level
    assert len(outputs['head']) == len(head) == 3 * 5
    for e, a in zip(head, outputs['head']):
        assert torch.equal(a, e)
    assert not any(t.requires_grad for t in outputs['head'])


def test_a_two_stage_detector_gives_rpn_and_roi_outputs_and_its_proposals(
        faster_rcnn_cfg):
    model = build(faster_rcnn_cfg)
    outputs, proposals = stage_outputs(model, data(model))
    assert list(outputs) == ['neck', 'rpn', 'roi']
    assert all(len(outputs[stage]) > 0 for stage in outputs)
    assert len(proposals) == 1 and len(proposals[0].bboxes) > 0


def test_replayed_proposals_feed_another_models_roi_head(faster_rcnn_cfg):
    model, other = build(faster_rcnn_cfg), build(faster_rcnn_cfg, seed=1)
    batch = data(model)
    outputs, proposals = stage_outputs(model, batch)
    own, own_proposals = stage_outputs(other, batch)
    replayed, used = stage_outputs(other, batch, proposals)
    assert torch.equal(used[0].bboxes, proposals[0].bboxes)
    # the RPN still runs (its outputs are the other model's own) ...
    for e, a in zip(own['rpn'], replayed['rpn']):
        assert torch.equal(a, e)
    # ... while its RoI head sees the first model's proposals
    assert not torch.equal(own_proposals[0].bboxes, proposals[0].bboxes)
    assert replayed['roi'][0].shape[0] == len(proposals[0])
    # the same model on its own proposals computes the same RoI outputs
    again, _ = stage_outputs(model, batch, proposals)
    for e, a in zip(outputs['roi'], again['roi']):
        torch.testing.assert_close(a, e)


class FakeRPN(nn.Module):

    def __init__(self):
        super().__init__()
        self.calls = 0

    def predict(self, value):
        self.calls += 1
        return [InstanceData(bboxes=torch.full((1, 4), float(value)))]


class FakeDetector(nn.Module):

    def __init__(self):
        super().__init__()
        self.rpn_head = FakeRPN()


def test_replay_records_copies_and_hands_on_the_replayed_proposals():
    model = FakeDetector()
    with replay_proposals(model) as recorded:
        proposals = model.rpn_head.predict(1)
        proposals[0].bboxes += 10  # a RoI head changing its input
    assert recorded[0][0].bboxes.tolist() == [[1.] * 4]
    with replay_proposals(model, recorded) as again:
        replayed = model.rpn_head.predict(2)
    # the new proposals are recorded, the replayed ones handed on
    assert again[0][0].bboxes.tolist() == [[2.] * 4]
    assert replayed[0].bboxes.tolist() == [[1.] * 4]
    assert replayed[0] is not recorded[0][0]
    assert model.rpn_head.calls == 2


def test_replay_restores_the_rpn_even_when_the_block_fails():
    model = FakeDetector()
    with pytest.raises(KeyError):
        with replay_proposals(model):
            assert 'predict' in vars(model.rpn_head)
            raise KeyError('fails')
    assert 'predict' not in vars(model.rpn_head)
    assert model.rpn_head.predict(3)[0].bboxes.tolist() == [[3.] * 4]


def test_a_model_without_rpn_records_nothing():
    model = nn.Module()
    with replay_proposals(model, [['unused']]) as recorded:
        pass
    assert recorded == [] and not hasattr(model, 'rpn_head')
