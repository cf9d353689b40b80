# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The folding rules on small convs and Linears: a folded layer computes
what the layer and its implicit value computed together, and the
predicates refuse the layers where a fold would not be exact."""
import pytest
import torch
from mmdet.models.layers import NormedConv2d, NormedLinear
from torch import nn

from mmdet_yolor.models.layers import folding

# (layer, input shape, channel dim of its output)
PRODUCERS = {
    'linear': (lambda: nn.Linear(6, 4), (3, 6), -1),
    'conv1d': (lambda: nn.Conv1d(4, 6, 3, padding=1), (2, 4, 7), 1),
    'grouped_conv2d':
    (lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 5, 5), 1),
    'conv2d_without_bias':
    (lambda: nn.Conv2d(3, 4, 3, bias=False), (2, 3, 5, 5), 1),
    'grouped_transposed':
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (2, 4, 3, 3), 1),
}


def channel_view(value, out, dim):
    """``value`` (C, ) shaped to broadcast along ``dim`` of ``out``."""
    return value if dim == -1 else value.view((-1, ) + (1, ) * (out.dim() - 2))


def build(name):
    torch.manual_seed(0)
    make, shape, dim = PRODUCERS[name]
    return make(), torch.randn(shape), dim


@pytest.mark.parametrize('name', PRODUCERS)
def test_a_multiplier_folds_exactly_into_any_producer(name):
    layer, x, dim = build(name)
    m = 0.5 + torch.rand(folding.layer_channels(layer)[1])
    with torch.no_grad():
        expected = layer(x) * channel_view(m, layer(x), dim)
        folding.fold_multiply_into_producer(layer, m)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_multiply_into_producer_scales_the_output_columns_of_a_transposed_conv(
):
    # a transposed conv stores (in, out / groups, k, k): the multiplier
    # scales dim 1 within each group, not dim 0
    weight = torch.ones(4, 3, 1, 1)
    m = torch.arange(1., 7.)
    folded, bias = folding.multiply_into_producer(
        weight, None, m, transposed_groups=2)
    assert bias is None
    assert folded[:2, :, 0, 0].tolist() == [[1., 2., 3.]] * 2
    assert folded[2:, :, 0, 0].tolist() == [[4., 5., 6.]] * 2


@pytest.mark.parametrize('name', ['linear', 'conv2d_without_bias'])
def test_an_add_folds_exactly_into_the_producing_layer(name):
    layer, x, dim = build(name)
    a = torch.randn(folding.layer_channels(layer)[1])
    with torch.no_grad():
        expected = layer(x) + channel_view(a, layer(x), dim)
        folding.fold_add_into_producer(layer, a)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    assert isinstance(layer.bias, nn.Parameter)


def test_a_bias_made_by_a_fold_does_not_share_the_implicit_value():
    a = torch.randn(4)
    bias = folding.add_into_producer(None, a)
    bias += 1
    assert not torch.equal(bias, a)


# layers whose input takes an add exactly: (layer, input shape, channel dim)
CONSUMERS = {
    'linear': (lambda: nn.Linear(6, 4), (3, 6), -1),
    'linear_without_bias': (lambda: nn.Linear(6, 4, bias=False), (3, 6), -1),
    'conv2d_1x1': (lambda: nn.Conv2d(6, 4, 1), (2, 6, 5, 5), 1),
    'grouped_conv2d_1x1':
    (lambda: nn.Conv2d(6, 4, 1, groups=2), (2, 6, 5, 5), 1),
}


@pytest.mark.parametrize('name', CONSUMERS)
def test_an_add_on_the_input_folds_into_linears_and_unpadded_1x1_convs(name):
    torch.manual_seed(0)
    make, shape, dim = CONSUMERS[name]
    layer, x = make(), torch.randn(shape)
    assert folding.input_add_folds(layer)
    a = torch.randn(folding.layer_channels(layer)[0])
    with torch.no_grad():
        expected = layer(x + channel_view(a, x, dim))
        folding.fold_add_into_consumer(layer, a)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_add_into_consumer_computes_the_shifted_bias():
    weight = torch.tensor([[1., 2.], [3., 4.]])
    bias = torch.tensor([10., 20.])
    a = torch.tensor([1., -1.])
    assert folding.add_into_consumer(weight, bias, a).tolist() == [9., 19.]
    assert folding.add_into_consumer(weight, None, a).tolist() == [-1., -1.]


@pytest.mark.parametrize(
    'layer', [
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Conv2d(4, 4, 1, padding=1),
        nn.ConvTranspose2d(4, 4, 1),
        nn.ConvTranspose2d(4, 4, 3, stride=2),
    ],
    ids=['padded_3x3', 'padded_1x1', 'transposed_1x1', 'transposed_3x3'])
def test_an_input_add_is_refused_where_the_layer_sees_it_unevenly(layer):
    assert not folding.input_add_folds(layer)


def test_the_refused_input_add_would_be_wrong_at_a_padded_border():
    # why padded convs are refused: the zero border does not see the add,
    # so a bias shift is exact inside and wrong along the border
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 2, 3, padding=1)
    x, a = torch.randn(1, 2, 6, 6), torch.randn(2)
    with torch.no_grad():
        expected = conv(x + a.view(-1, 1, 1))
        shifted = conv.bias + conv.weight.sum((2, 3)) @ a
        folded = nn.functional.conv2d(x, conv.weight, shifted, padding=1)
    torch.testing.assert_close(folded[..., 1:-1, 1:-1], expected[..., 1:-1,
                                                                 1:-1])
    assert (folded[..., 0, :] - expected[..., 0, :]).abs().max() > 1e-3


def test_normalised_weight_layers_are_not_plain():
    assert folding.is_plain(nn.Conv2d(2, 2, 1)) and folding.is_plain(
        nn.Linear(2, 2))
    assert folding.is_plain(nn.ConvTranspose2d(2, 2, 1)) and folding.is_plain(
        nn.Conv1d(2, 2, 1))
    assert not folding.is_plain(NormedConv2d(2, 2, 1))
    assert not folding.is_plain(NormedLinear(2, 2))
    assert not folding.is_plain(nn.BatchNorm2d(2))


def test_layer_channels_name_the_channel_dim_of_each_layer_type():
    assert folding.layer_channels(nn.Linear(3, 5)) == (3, 5, -1)
    assert folding.layer_channels(nn.Conv2d(3, 5, 1)) == (3, 5, 1)
    assert folding.layer_channels(nn.ConvTranspose2d(3, 5, 1)) == (3, 5, 1)
