# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Implicit prediction refinement of one bare layer (``nn.Conv2d``,
``nn.Linear``, a transposed conv): what attaching it does to the layer,
``ImplicitM(layer(ImplicitA(x)))`` with one implicit pair or one per level
of a ``LevelCursor``, what each layer folds or keeps and why, and how
stripping the folded implicits gives the plain layer back."""
import copy

import pytest
import torch
from mmdet.models.layers import NormedConv2d, NormedLinear
from torch import nn

from mmdet_yolor.models.foldable import INPUT, OUTPUT, FoldSite
from mmdet_yolor.models.heads.levels import LevelCursor
from mmdet_yolor.models.heads.refinement import (PredictionRefinementMixin,
                                                 attach_prediction_refinement)
from mmdet_yolor.models.layers import ImplicitA, ImplicitM
from mmdet_yolor.models.wrapping import wrapped_type

# Each layer takes 2 channels and predicts 3; its input shape.
LAYERS = {
    'conv1x1': (lambda: nn.Conv2d(2, 3, 1), (2, 2, 3, 3)),
    'conv3x3': (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 3, 3)),
    'linear': (lambda: nn.Linear(2, 3), (4, 2)),
    'deconv': (lambda: nn.ConvTranspose2d(2, 3, 2, stride=2), (1, 2, 2, 2)),
}
# Non-trivial implicit values of level l: the add is A + l, the multiply
# M + l.
A = [0.5, -1.0]
M = [2.0, -0.5, 1.5]
FOLDED_ADD = 'add folded into bias (b += W a)'
FOLDED_MULTIPLY = 'multiply folded into weight and bias (W *= m, b *= m)'


def refined(name, levels=None, site=None, **kwargs):
    """(a plain copy of the layer, the layer refined with non-trivial
    implicits, an input)."""
    build, shape = LAYERS[name]
    torch.manual_seed(0)
    layer = build()
    plain = copy.deepcopy(layer)
    attach_prediction_refinement(layer, levels, kwargs.pop('implicit_cfg', {}),
                                 site or f'Head.{name}', **kwargs)
    set_values(layer)
    return plain, layer, torch.randn(shape)


def set_values(layer):
    with torch.no_grad():
        for level, implicit in enumerate(layer._modules.get('implicit_a', ())):
            implicit.implicit.copy_(torch.tensor(A) + level)
        for level, implicit in enumerate(layer.implicit_m):
            implicit.implicit.copy_(torch.tensor(M) + level)


def expected(plain, x, level=0, input_implicit=True):
    """``implicit_m[level](plain(implicit_a[level](x)))`` by hand."""
    a, m = torch.tensor(A) + level, torch.tensor(M) + level
    if x.dim() > 2:  # channels of (N, C, H, W)
        a, m = a.view(2, 1, 1), m.view(3, 1, 1)
    return plain(x + a if input_implicit else x) * m


# --- attaching ---------------------------------------------------------------


@pytest.mark.parametrize('name', LAYERS)
def test_attached_layer_is_a_subclass_of_its_type_keeping_its_keys(name):
    plain, layer, _ = refined(name)
    layer_type = type(plain)
    assert type(layer).__name__ == f'YOLOR{layer_type.__name__}'
    assert isinstance(layer, layer_type)
    assert isinstance(layer, PredictionRefinementMixin)
    assert wrapped_type(layer) is layer_type
    state = layer.state_dict()
    assert set(state) == set(plain.state_dict()) | {
        'implicit_a.0.implicit', 'implicit_m.0.implicit'
    }
    for key, value in plain.state_dict().items():
        assert torch.equal(state[key], value), key
    assert (layer.yolor_site, layer.yolor_levels,
            layer.yolor_slot) == (f'Head.{name}', None, -1)
    dim = -1 if name == 'linear' else 1
    implicit_a, = layer.implicit_a
    implicit_m, = layer.implicit_m
    assert isinstance(implicit_a, ImplicitA)
    assert isinstance(implicit_m, ImplicitM)
    assert (implicit_a.channels, implicit_a.dim) == (2, dim)
    assert (implicit_m.channels, implicit_m.dim) == (3, dim)


@pytest.mark.parametrize('name', LAYERS)
def test_refined_layer_computes_implicit_m_of_layer_of_implicit_a(name):
    plain, layer, x = refined(name)
    torch.testing.assert_close(layer(x), expected(plain, x))
    # one pair serves any number of calls, no cursor needed
    torch.testing.assert_close(layer(x), expected(plain, x))


@pytest.mark.parametrize('name', ['conv3x3', 'linear'])
def test_without_input_implicit_only_the_output_is_refined(name):
    plain, layer, x = refined(name, input_implicit=False)
    assert 'implicit_a' not in layer._modules
    assert set(layer.state_dict()) == set(
        plain.state_dict()) | {'implicit_m.0.implicit'}
    torch.testing.assert_close(
        layer(x), expected(plain, x, input_implicit=False))


def test_implicit_cfg_reaches_every_implicit():
    torch.manual_seed(0)
    plain = nn.Conv2d(2, 3, 1)
    layer = copy.deepcopy(plain)
    cursor = LevelCursor(2, 'Head', per_level_entry=False)
    attach_prediction_refinement(layer, cursor,
                                 dict(form='nn', init='identity', std=0.1),
                                 'Head.conv')
    implicits = [*layer.implicit_a, *layer.implicit_m]
    assert len(implicits) == 4
    assert all(
        (i.form, i.init, i.std) == ('nn', 'identity', 0.1) for i in implicits)
    # identity implicits: the plain layer's outputs at every level
    x = torch.randn(1, 2, 2, 2)
    cursor.begin()
    for _ in range(2):
        torch.testing.assert_close(layer(x), plain(x), rtol=0, atol=0)
    cursor.end(check=True)


# --- one implicit pair per level ---------------------------------------------


def test_per_level_implicits_follow_the_calls_of_a_counting_cursor():
    cursor = LevelCursor(3, 'Head', per_level_entry=False)
    plain, layer, x = refined('conv3x3', cursor)
    assert len(layer.implicit_a) == len(layer.implicit_m) == 3
    assert layer.yolor_levels is cursor and layer.yolor_slot == 0
    assert cursor.sites == ['Head.conv3x3']
    cursor.begin()
    for level in range(3):
        torch.testing.assert_close(layer(x), expected(plain, x, level))
    cursor.end(check=True)


def test_layers_of_one_cursor_read_the_level_it_started():
    cursor = LevelCursor(2, 'Head', per_level_entry=True)
    cls_plain, cls, x = refined('conv1x1', cursor, 'Head.cls')
    reg_plain, reg, _ = refined('conv3x3', cursor, 'Head.reg')
    assert (cls.yolor_slot, reg.yolor_slot) == (0, 1)
    assert cursor.sites == ['Head.cls', 'Head.reg']
    cursor.begin()
    for level in range(2):
        cursor.start_level(torch.zeros(1, dtype=torch.long))
        for _ in range(2):  # a level is a forward_single, not a call
            torch.testing.assert_close(cls(x), expected(cls_plain, x, level))
            torch.testing.assert_close(reg(x), expected(reg_plain, x, level))
    cursor.end(check=True)


def test_per_level_linear_reads_its_level_too():
    cursor = LevelCursor(2, 'Head', per_level_entry=False)
    plain, layer, x = refined('linear', cursor)
    cursor.begin()
    outputs = [layer(x), layer(x)]
    cursor.end(check=True)
    for level, output in enumerate(outputs):
        torch.testing.assert_close(output, expected(plain, x, level))


def test_shared_layer_errors_name_its_site():
    cursor = LevelCursor(3, 'FCOSHead', per_level_entry=False)
    _, layer, x = refined('conv3x3', cursor, 'FCOSHead.conv_cls')
    with pytest.raises(
            RuntimeError,
            match=r'^FCOSHead\.conv_cls has implicits for 3 pyramid levels '
            r'and takes its level from a forward of FCOSHead, but was '
            r'called outside one'):
        layer(x)
    cursor.begin()
    for _ in range(3):
        layer(x)
    with pytest.raises(
            RuntimeError,
            match=r'^FCOSHead\.conv_cls has implicits for 3 pyramid levels '
            r'but was called a 4th time in one forward of FCOSHead'):
        layer(x)
    cursor.end(check=False)


def test_implicit_sites_name_each_role_and_level():
    cursor = LevelCursor(2, 'Head', per_level_entry=False)
    _, layer, _ = refined('conv1x1', cursor)
    sites = layer.implicit_sites()
    assert [(s.name, s.role, s.target, s.index) for s in sites] == [
        ('implicit_a.0', INPUT, '', 0),
        ('implicit_a.1', INPUT, '', 1),
        ('implicit_m.0', OUTPUT, '', 0),
        ('implicit_m.1', OUTPUT, '', 1),
    ]
    implicits = [*layer.implicit_a, *layer.implicit_m]
    assert [s.implicit for s in sites] == implicits
    _, single, _ = refined('linear', input_implicit=False)
    assert [(s.name, s.role, s.index)
            for s in single.implicit_sites()] == [('implicit_m.0', OUTPUT, 0)]


# --- folding -----------------------------------------------------------------


@pytest.mark.parametrize('name', ['conv1x1', 'linear'])
def test_one_pair_folds_completely_into_a_1x1_conv_or_linear(name):
    _, layer, x = refined(name)
    before = layer(x)
    assert layer.fold_implicit() == [
        FoldSite('implicit_a.0', True, FOLDED_ADD),
        FoldSite('implicit_m.0', True, FOLDED_MULTIPLY),
    ]
    torch.testing.assert_close(layer(x), before)
    for implicit in (layer.implicit_a[0], layer.implicit_m[0]):
        assert implicit.folded
        torch.testing.assert_close(
            implicit.representation(),
            torch.full_like(implicit.implicit, implicit.offset))
    # folded implicits are not folded again
    weight = layer.weight.clone()
    assert layer.fold_implicit() == []
    assert torch.equal(layer.weight, weight)


def test_add_before_a_padded_conv_is_kept():
    _, layer, x = refined('conv3x3')
    before = layer(x)
    kept = FoldSite(
        'implicit_a.0', False,
        'add before a padded 3x3 conv: exact only inside the zero border')
    assert layer.fold_implicit() == [
        kept, FoldSite('implicit_m.0', True, FOLDED_MULTIPLY)
    ]
    assert not layer.implicit_a[0].folded
    torch.testing.assert_close(layer(x), before)
    # the kept add is reported again, the multiply is not folded twice
    weight = layer.weight.clone()
    assert layer.fold_implicit() == [kept]
    assert torch.equal(layer.weight, weight)


def test_add_before_a_transposed_conv_is_kept():
    _, layer, x = refined('deconv')
    before = layer(x)
    assert layer.fold_implicit() == [
        FoldSite(
            'implicit_a.0', False, 'add before a transposed conv: its '
            'output overlaps shift unevenly'),
        FoldSite('implicit_m.0', True, FOLDED_MULTIPLY),
    ]
    torch.testing.assert_close(layer(x), before)


def test_without_input_implicit_only_the_multiply_folds():
    _, layer, x = refined('conv3x3', input_implicit=False)
    before = layer(x)
    assert layer.fold_implicit() == [
        FoldSite('implicit_m.0', True, FOLDED_MULTIPLY)
    ]
    torch.testing.assert_close(layer(x), before)


def test_per_level_implicits_of_a_shared_layer_are_kept():
    cursor = LevelCursor(2, 'Head', per_level_entry=False)
    _, layer, _ = refined('conv1x1', cursor)
    state = copy.deepcopy(layer.state_dict())
    why = ('per-level implicits on a layer shared by every level (train '
           'with share_across_levels=True to fold them)')
    assert layer.fold_implicit() == [
        FoldSite(name, False, why) for name in ('implicit_a.0', 'implicit_a.1',
                                                'implicit_m.0', 'implicit_m.1')
    ]
    for key, value in layer.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(i.folded for i in [*layer.implicit_a, *layer.implicit_m])


@pytest.mark.parametrize('layer_type', [NormedConv2d, NormedLinear])
def test_implicits_of_a_weight_normalising_layer_are_kept(layer_type):
    torch.manual_seed(0)
    layer = layer_type(2, 3, 1) if layer_type is NormedConv2d else \
        layer_type(2, 3)
    attach_prediction_refinement(layer, None, {}, 'Head.normed')
    weight = layer.weight.clone()
    why = f'{layer_type.__name__} normalises its weights'
    assert layer.fold_implicit() == [
        FoldSite('implicit_a.0', False, why),
        FoldSite('implicit_m.0', False, why),
    ]
    assert torch.equal(layer.weight, weight)


# --- stripping: the plain layer again ----------------------------------------


@pytest.mark.parametrize('name', ['conv1x1', 'linear'])
def test_strip_after_a_complete_fold_gives_back_the_plain_layer(name):
    plain, layer, x = refined(name)
    before = layer(x)
    layer.fold_implicit()
    layer.strip_folded_implicit()
    assert type(layer) is type(plain)
    assert not isinstance(layer, PredictionRefinementMixin)
    for attribute in ('implicit_a', 'implicit_m', 'yolor_site', 'yolor_levels',
                      'yolor_slot'):
        assert not hasattr(layer, attribute), attribute
    assert set(layer.state_dict()) == set(plain.state_dict())
    torch.testing.assert_close(layer(x), before)
    # the folded weights in the plain layer compute the same
    plain.load_state_dict(layer.state_dict())
    torch.testing.assert_close(plain(x), before)


def test_identity_refinement_undone_is_the_plain_layer():
    torch.manual_seed(0)
    plain = nn.Conv2d(2, 3, 1)
    layer = copy.deepcopy(plain)
    attach_prediction_refinement(layer, None, dict(init='identity'),
                                 'Head.conv')
    x = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(layer(x), plain(x))
    layer.fold_implicit()
    layer.strip_folded_implicit()
    assert type(layer) is nn.Conv2d
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(layer.state_dict()[key], value)
    torch.testing.assert_close(layer(x), plain(x))


def test_strip_after_a_partial_fold_keeps_what_was_not_folded():
    plain, layer, x = refined('conv3x3')
    before = layer(x)
    layer.fold_implicit()
    layer.strip_folded_implicit()
    assert type(layer).__name__ == 'YOLORConv2d'
    assert 'implicit_a' in layer._modules
    assert 'implicit_m' not in layer._modules
    assert set(layer.state_dict()) == set(
        plain.state_dict()) | {'implicit_a.0.implicit'}
    assert [s.name for s in layer.implicit_sites()] == ['implicit_a.0']
    torch.testing.assert_close(layer(x), before)


def test_strip_without_folding_removes_nothing():
    _, layer, x = refined('conv1x1')
    before = layer(x)
    keys = set(layer.state_dict())
    layer.strip_folded_implicit()
    assert type(layer).__name__ == 'YOLORConv2d'
    assert set(layer.state_dict()) == keys
    torch.testing.assert_close(layer(x), before)
