# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from mmdet_yolor.analysis.config_check import steps
from mmdet_yolor.analysis.config_check.settings import SweepSettings

from yolor_testing import tiny_fcos_config


class Scale(BaseModel):
    """A one-parameter model: its loss is ``(w * x - 1) ** 2``, its
    prediction ``w * x``; it records the batches it predicts."""

    def __init__(self, loss_offset=0.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(()))
        self.loss_offset = loss_offset
        self.predicted = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        outputs = [self.weight * x for x in inputs]
        if mode == 'loss':
            return dict(
                loss=sum(
                    (y - 1).pow(2).mean() for y in outputs) + self.loss_offset)
        self.predicted.append(len(inputs))
        return outputs


def training_config(**cfg):
    return Config(
        dict(optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)), **cfg))


BATCH = dict(inputs=[torch.ones(2), torch.ones(2)], data_samples=[0, 1])


def test_train_steps_with_the_optimizer_and_schedulers_of_the_config():
    model = Scale()
    warmup = dict(
        type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=3)
    # the steps are the first iterations of an epoch: an epoch-based
    # scheduler does not step
    decay = dict(type='MultiStepLR', by_epoch=True, milestones=[1])
    cfg = training_config(param_scheduler=[warmup, decay])
    losses = steps.train(model, cfg, BATCH, SweepSettings(steps=3))
    assert len(losses) == 3 and losses == sorted(losses, reverse=True)
    assert model.training
    hub = MessageHub.get_current_instance()
    assert (hub.get_info('iter'), hub.get_info('max_iters')) == (2, 3)
    # SGD on 2 (w - 1) ** 2 at the warm-up's lr, half of it at the first
    # step and all of it at the last (mmengine's LinearLR ends at end - 1)
    weight = 0.0
    for lr in (0.05, 0.075, 0.1):
        weight += lr * 4 * (1 - weight)
    assert float(model.weight.detach()) == pytest.approx(weight, 1e-5)


def test_a_loss_that_is_not_finite_stops_training():
    model = Scale(loss_offset=float('nan'))
    with pytest.raises(FloatingPointError, match='loss is nan at step 1'):
        steps.train(model, training_config(), BATCH, SweepSettings())


def test_predict_in_batches_of_the_test_dataloader():
    model = Scale()
    model.test_step = lambda data: [0] * len(model(data['inputs']))
    cfg = training_config(test_dataloader=dict(batch_size=1))
    assert steps.predict(model, cfg, BATCH) == [0, 0]
    assert model.predicted == [1, 1] and not model.training
    assert steps.predict(model, training_config(), BATCH) == [0, 0]
    assert model.predicted[2:] == [2]


def test_build_model_is_seeded_and_leaves_the_config_alone():
    cfg = tiny_fcos_config('data', 'work')
    model_cfg = cfg.model.to_dict()
    first, second = (steps.build_model(cfg, seed=0) for _ in range(2))
    assert cfg.model.to_dict() == model_cfg
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    other = steps.build_model(cfg, seed=1)
    assert not torch.equal(first.bbox_head.conv_cls.weight,
                           other.bbox_head.conv_cls.weight)
