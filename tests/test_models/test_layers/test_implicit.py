# Copyright (c) mmdet_yolor contributors. All rights reserved.
import itertools

import pytest
import torch
from mmdet.registry import MODELS

from mmdet_yolor.models.layers import (IMPLICIT_FORMS, ImplicitA, ImplicitC,
                                       ImplicitM, is_implicit_parameter)

OPERATORS = {'add': ImplicitA, 'multiply': ImplicitM, 'concat': ImplicitC}
CASES = list(itertools.product(OPERATORS, IMPLICIT_FORMS))


def build(operator, form, channels=8, **kwargs):
    return MODELS.build(
        dict(
            type=OPERATORS[operator].__name__,
            channels=channels,
            form=form,
            **kwargs))


@pytest.mark.parametrize('operator,form', CASES)
def test_output_shape_feature_map(operator, form):
    layer = build(operator, form)
    x = torch.randn(2, 8, 5, 7)
    out = layer(x)
    expected_channels = 16 if operator == 'concat' else 8
    assert out.shape == (2, expected_channels, 5, 7)


@pytest.mark.parametrize('operator,form', CASES)
def test_output_shape_linear_input(operator, form):
    layer = build(operator, form, dim=-1)
    x = torch.randn(3, 4, 8)
    out = layer(x)
    assert out.shape == (3, 4, 16 if operator == 'concat' else 8)


@pytest.mark.parametrize('operator,form', CASES)
def test_combines_representation_per_channel(operator, form):
    layer = build(operator, form)
    x = torch.randn(2, 8, 3, 3)
    g = layer.representation().detach().view(1, 8, 1, 1)
    out = layer(x)
    if operator == 'add':
        torch.testing.assert_close(out, x + g)
    elif operator == 'multiply':
        torch.testing.assert_close(out, x * g)
    else:
        torch.testing.assert_close(out[:, :8], x)
        torch.testing.assert_close(out[:, 8:], g.expand(2, 8, 3, 3))


@pytest.mark.parametrize('operator,form', CASES)
def test_paper_init_statistics(operator, form):
    torch.manual_seed(0)
    layer = build(operator, form, channels=4096)
    g = layer.representation().detach()
    mean = 1.0 if operator == 'multiply' else 0.0
    assert g.shape == (4096, )
    assert abs(g.mean().item() - mean) < 0.003
    assert 0.017 < g.std().item() < 0.023


@pytest.mark.parametrize('operator,form', CASES)
def test_identity_init_is_exact(operator, form):
    layer = build(operator, form, init='identity')
    x = torch.randn(2, 8, 4, 4)
    out = layer(x)
    if operator == 'concat':
        assert torch.equal(out[:, :8], x)
        assert torch.equal(out[:, 8:], torch.zeros(2, 8, 4, 4))
    else:
        assert torch.equal(out, x)


@pytest.mark.parametrize('operator,form', CASES)
@pytest.mark.parametrize('init', ['paper', 'identity'])
def test_gradients_reach_implicit_parameters(operator, form, init):
    layer = build(operator, form, init=init)
    out = layer(torch.randn(2, 8, 3, 3))
    (out * torch.randn_like(out)).sum().backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    assert grads, 'implicit layer has no parameters'
    # with identity init one factor is zero, so the other gets no gradient
    # on the first step; the zeroed one must always get it
    nonzero = [name for name, g in grads.items() if g.abs().sum() > 0]
    if init == 'paper':
        assert nonzero == list(grads)
    else:
        assert nonzero


def test_parameter_counts_of_forms():
    assert sum(p.numel() for p in build('add', 'vector').parameters()) == 8
    # nn: latent of 2 * channels and a (channels x 2 * channels) projection
    assert sum(p.numel() for p in build('add', 'nn').parameters()) == \
        16 + 8 * 16
    assert sum(
        p.numel()
        for p in build('add', 'nn', prior_dim=4).parameters()) == 4 + 8 * 4
    # mf: num_atoms coefficients and a (num_atoms x channels) basis
    assert sum(
        p.numel()
        for p in build('add', 'mf', num_atoms=3).parameters()) == 3 + 3 * 8


def test_no_parameter_is_named_weight_or_bias():
    # mmdet's init_cfg overrides re-initialise every `weight` below a layer
    for operator, form in CASES:
        names = [name for name, _ in build(operator, form).named_parameters()]
        assert not {'weight', 'bias'} & set(names)


def test_init_weights_reinitialises():
    layer = build('add', 'nn', init='identity')
    with torch.no_grad():
        layer.projection.fill_(1.)
    layer.init_weights()
    assert torch.count_nonzero(layer.projection) == 0


@pytest.mark.parametrize('operator', ['add', 'multiply'])
def test_channel_mismatch_names_the_problem(operator):
    layer = build(operator, 'vector', channels=8)
    with pytest.raises(
            ValueError,
            match=r'built for 8 channels but met a '
            r'tensor of shape \(2, 6, 3, 3\)'):
        layer(torch.randn(2, 6, 3, 3))


def test_bad_form_and_init_are_refused():
    with pytest.raises(ValueError, match="form must be one of"):
        ImplicitA(8, form='matrix')
    with pytest.raises(ValueError, match="init must be one of"):
        ImplicitM(8, init='zeros')


@pytest.mark.parametrize(
    'name,implicit',
    [
        ('neck.implicit_alignment.0.implicit', True),
        ('bbox_head.conv_cls.implicit_m.4.implicit', True),
        ('implicit_a.0.implicit', True),
        ('bbox_head.conv_cls.weight', False),
        # a module named with the prefix inside it is not an implicit layer
        ('backbone.explicit_implicit_gate.weight', False)
    ])
def test_is_implicit_parameter(name, implicit):
    assert is_implicit_parameter(name) is implicit
