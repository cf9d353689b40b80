# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch
from torch import nn

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.config_check import probes
from mmdet_yolor.analysis.config_check.inputs import (InputSpec,
                                                      generate_samples)
from mmdet_yolor.analysis.config_check.probes import ImplicitProbe, OutputProbe
from mmdet_yolor.analysis.config_check.settings import SweepSettings
from mmdet_yolor.analysis.config_check.steps import build_model

from yolor_testing import tiny_fcos_config


class Pair(nn.Module):

    def forward(self, x):
        return x * 2, x * 3


def test_output_probe_records_the_outputs_a_gradient_reaches():
    model = nn.Module()
    model.pair = Pair()
    model.shared = nn.Linear(2, 2)
    probe = OutputProbe(model, {'pair': None, 'shared': 2, 'absent': None})
    x = torch.ones(1, 2, requires_grad=True)
    first, _ = model.pair(x)
    # a layer called once per level: the third call is level 0 again
    levels = [model.shared(x) for _ in range(3)]
    (first.sum() + levels[1].sum()).backward()
    probe.remove()
    model.pair(x)[1].sum().backward()  # not recorded any more

    assert probe.watched == {('pair', 0), ('pair', 1), ('shared', 0),
                             ('shared', 1)}
    assert probe.reached == {('pair', 0), ('shared', 1)}
    assert probe.unreached(('pair', 1)) and probe.unreached(('shared', 0))
    assert not probe.unreached(('pair', 0))
    # a whole output sequence is unreached only if all of it is
    assert not probe.unreached(('pair', None))
    # what never took part in the loss's graph is not "unreached"
    assert not probe.unreached(('absent', None))


@pytest.fixture(scope='module')
def yolor_fcos():
    return build_model(yolorize(tiny_fcos_config('data', 'work')), seed=0)


def backward_loss(model):
    batch = generate_samples(
        InputSpec(6), [(64, 64)] * 2, SweepSettings(objects=3))
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    model.parse_losses(losses)[0].backward()


def test_implicit_targets_are_what_the_implicits_act_on(yolor_fcos):
    # the neck's outputs as a sequence, each refined layer per level
    assert probes.implicit_targets(yolor_fcos) == {
        'neck': None,
        'bbox_head.conv_cls': 5,
        'bbox_head.conv_reg': 5,
        'bbox_head.conv_centerness': 5
    }


def test_implicit_probe_records_calls_and_gradients(yolor_fcos):
    probe = ImplicitProbe(yolor_fcos)
    assert probe.uncalled() == list(probe.layers)
    assert len(probe.layers) == len(probe.trainable) == 35
    backward_loss(yolor_fcos)
    probe.remove()
    assert probe.uncalled() == []
    assert probe.unreached() == []
    assert set(probe.zero_gradients()) <= set(probe.trainable)
    yolor_fcos.zero_grad()


def test_unreached_parameters_are_excused_by_the_baseline(yolor_fcos):
    probe = ImplicitProbe(yolor_fcos)
    probe.remove()
    key = 'neck.implicit_alignment.4.implicit'
    assert key in probe.unreached()

    class Baseline:
        """No gradient reached level 4 of the neck's outputs."""

        @staticmethod
        def unreached(target):
            return target == ('neck', 4)

    assert probe.excused(key, Baseline())
    assert not probe.excused('neck.implicit_alignment.0.implicit', Baseline())
    assert not probe.excused(key, None)
