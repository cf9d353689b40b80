# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The pyramid level of a shared prediction layer, room by room: a
``LevelCursor`` driven by hand, ``head_num_levels`` and
``starts_levels_in_forward_single`` on bare modules and types, and
``LevelOwnerMixin`` on tiny fake heads whose layers record their levels."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmdet.models.dense_heads import FCOSHead, TOODHead
from mmdet.models.task_modules.prior_generators import MlvlPointGenerator
from mmdet.models.utils import multi_apply
from torch import nn

from mmdet_yolor.models.heads.levels import (LevelCursor, LevelOwnerMixin,
                                             head_num_levels, ordinal,
                                             starts_levels_in_forward_single)
from mmdet_yolor.models.heads.refinement import attach_prediction_refinement
from mmdet_yolor.models.wrapping import mix_into
from yolor_dev.compiling import count_compilation

# a level owner's yolor_level_index, for cursors driven by hand
LEVEL_INDEX = torch.zeros(1, dtype=torch.long)
SHARE = r'Build the head with share_across_levels=True to use one implicit ' \
    r'pair for every call\.'


class LevelProbe(nn.Module):
    """A layer shared by every level: reads its level from ``cursor`` at
    each call and records it."""

    def __init__(self, cursor: LevelCursor, site: str) -> None:
        super().__init__()
        self.cursor = cursor
        self.slot = cursor.add_layer(site)
        self.seen = []

    def forward(self, x):
        if x.numel() == 0:
            raise ValueError('an empty feature')
        self.seen.append(self.cursor.level_of(self.slot))
        return x * 2


class MultiApplyHead(nn.Module):
    """A dense head in mmdet's pattern: ``forward`` maps ``forward_single``
    over the levels (``multi_apply``); the probe runs twice a level."""

    def __init__(self, strides=(8, 16, 32)) -> None:
        super().__init__()
        self.strides = list(strides)

    def forward(self, feats):
        return multi_apply(self.forward_single, feats)

    def forward_single(self, x):
        return self.probe(x), self.probe(x)


class LoopingHead(nn.Module):
    """A head looping over its levels in ``forward`` itself (TOOD, SOLO),
    with two shared layers."""

    num_levels = 3

    def forward(self, feats):
        outputs = []
        for x in feats:
            outputs.append(self.second(self.first(x)))
        return outputs


class OwnSingleHead(MultiApplyHead):
    """Inherits the ``multi_apply`` forward, overrides ``forward_single``."""

    def forward_single(self, x):
        return self.probe(x + 1), self.probe(x)


class OwnLoopHead(MultiApplyHead):
    """Replaces the ``multi_apply`` forward with a loop of its own."""

    def forward(self, feats):
        outputs = []
        for x in feats:
            outputs.append(self.probe(x))
        return outputs


class BreakingHead(MultiApplyHead):
    """Its ``forward_single`` breaks dynamo's graph before the prediction
    layer, as mmcv's deformable conv does in Cascade RPN's stage heads."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.conv_cls = nn.Conv2d(2, 3, 1)

    def forward_single(self, x):
        x = self.conv(x)
        torch._dynamo.graph_break()
        return self.conv_cls(x),


class ComprehensionHead(MultiApplyHead):
    """Calls ``forward_single`` from a comprehension (its own code object
    on Python 3.11)."""

    def forward(self, feats):
        return [self.forward_single(x) for x in feats]


def module_with(**attributes) -> nn.Module:
    module = nn.Module()
    for name, value in attributes.items():
        setattr(module, name, value)
    return module


def owner(head_type=MultiApplyHead, **kwargs):
    """``head_type`` with the mixin and its cursor, read by probes."""
    head = mix_into(head_type(**kwargs), LevelOwnerMixin)
    cursor = head.level_cursor()
    name = head_type.__name__
    if head_type is LoopingHead:
        head.first = LevelProbe(cursor, f'{name}.first')
        head.second = LevelProbe(cursor, f'{name}.second')
    else:
        head.probe = LevelProbe(cursor, f'{name}.probe')
    return head


def features(num=3):
    return [torch.full((1, 2, 1, 1), float(level)) for level in range(num)]


# --- head_num_levels ---------------------------------------------------------


@pytest.mark.parametrize(
    'attributes,expected',
    [
        # the prior generator first, then num_levels, then strides
        (dict(
            prior_generator=MlvlPointGenerator([4, 8, 16, 32]),
            num_levels=7,
            strides=[8]), 4),
        (dict(
            prior_generator=SimpleNamespace(num_levels=4),
            approx_anchor_generator=SimpleNamespace(num_levels=2)), 4),
        # Guided Anchoring's generator
        (dict(
            approx_anchor_generator=SimpleNamespace(num_levels=2),
            num_levels=7), 2),
        # a generator without an int count is no source
        (dict(prior_generator=SimpleNamespace(num_levels=None),
              num_levels=3), 3),
        (dict(prior_generator=object(), strides=(8, 16)), 2),
        (dict(num_levels=3, strides=[8]), 3),
        (dict(strides=(8, 16, 32, 64, 128)), 5),
        (dict(strides=[8, 16]), 2),
        # neither list nor tuple, nor an int count: one level
        (dict(strides=8), 1),
        (dict(num_levels='5'), 1),
        # RoI and DETR-family heads
        (dict(), 1),
    ])
def test_head_num_levels(attributes, expected):
    assert head_num_levels(module_with(**attributes)) == expected


# --- starts_levels_in_forward_single -----------------------------------------


@pytest.mark.parametrize('head_type,expected', [
    (MultiApplyHead, True),
    (OwnSingleHead, True),
    (LoopingHead, False),
    (OwnLoopHead, False),
    (ComprehensionHead, True),
    (FCOSHead, True),
    (TOODHead, False),
    (nn.Conv2d, False),
])
def test_starts_levels_in_forward_single(head_type, expected):
    assert starts_levels_in_forward_single(head_type) is expected


def test_the_mixed_type_is_read_through_its_wrapped_type():
    # the mixin's own forward names no forward_single: the cursor reads the
    # head's type, not the generated one
    head = mix_into(MultiApplyHead(), LevelOwnerMixin)
    assert not starts_levels_in_forward_single(type(head))
    assert head.level_cursor().per_level_entry


# --- LevelCursor -------------------------------------------------------------


def test_new_cursor_is_inactive_and_add_layer_gives_slots_in_order():
    cursor = LevelCursor(3, 'Head', per_level_entry=True)
    assert (cursor.num_levels, cursor.head_type) == (3, 'Head')
    assert not cursor.active
    assert cursor.levels_started == 0
    assert cursor.sites == [] and cursor.calls == []
    assert cursor.add_layer('Head.cls') == 0
    assert cursor.add_layer('Head.reg') == 1
    assert cursor.sites == ['Head.cls', 'Head.reg']


def test_begin_resets_levels_and_calls():
    for per_level_entry in (True, False):
        cursor = LevelCursor(3, 'Head', per_level_entry)
        cursor.add_layer('Head.cls')
        cursor.add_layer('Head.reg')
        cursor.begin()
        assert cursor.active and cursor.calls == [0, 0]
        cursor.start_level(LEVEL_INDEX)
        cursor.level_of(1)
        cursor.level_of(1)
        cursor.end(check=False)
        cursor.begin()
        assert cursor.active
        assert cursor.levels_started == 0
        assert cursor.calls == [0, 0]
        if per_level_entry:
            cursor.start_level(LEVEL_INDEX)
        assert cursor.level_of(1) == 0


def test_per_level_entry_level_is_set_by_start_level_for_every_layer():
    cursor = LevelCursor(3, 'Head', per_level_entry=True)
    cls, reg = cursor.add_layer('Head.cls'), cursor.add_layer('Head.reg')
    cursor.begin()
    for level in range(3):
        cursor.start_level(LEVEL_INDEX)
        # however often a layer runs within the level
        assert [cursor.level_of(cls) for _ in range(3)] == [level] * 3
        assert cursor.level_of(reg) == level
        assert cursor.levels_started == level + 1
    assert cursor.calls == [0, 0]  # per-call counts are not used
    cursor.end(check=True)
    assert not cursor.active


def test_per_level_entry_level_index_is_the_started_level_as_a_tensor():
    cursor = LevelCursor(3, 'Head', per_level_entry=True)
    slot = cursor.add_layer('Head.cls')
    for _ in range(2):  # begin forgets the last forward's level
        cursor.begin()
        assert cursor.level_index is None
        for level in range(3):
            cursor.start_level(LEVEL_INDEX)
            # run eagerly, the level is written into the owner's buffer
            assert cursor.level_index is LEVEL_INDEX
            assert int(LEVEL_INDEX) == level
            index = cursor.level_index_of(slot)
            assert index.shape == (1, ) and int(index) == level
            # a copy, which the next level leaves as it is
            assert index.data_ptr() != LEVEL_INDEX.data_ptr()
        cursor.end(check=True)


def test_level_index_outside_a_forward_or_before_its_first_level_is_an_error():
    cursor = LevelCursor(5, 'FCOSHead', per_level_entry=True)
    slot = cursor.add_layer('FCOSHead.conv_cls')
    with pytest.raises(RuntimeError, match=r'but was called outside one\.'):
        cursor.level_index_of(slot)
    cursor.begin()
    with pytest.raises(
            RuntimeError,
            match=r'^FCOSHead\.conv_cls ran before the first forward_single '
            r'of FCOSHead'):
        cursor.level_index_of(slot)


def test_start_level_outside_a_forward_does_nothing():
    cursor = LevelCursor(2, 'Head', per_level_entry=True)
    cursor.add_layer('Head.cls')
    for _ in range(3):  # forward_single called on its own
        cursor.start_level(LEVEL_INDEX)
    assert cursor.levels_started == 0 and not cursor.active


def test_starting_more_levels_than_the_cursor_has_is_an_error():
    cursor = LevelCursor(3, 'RPNHead', per_level_entry=True)
    cursor.add_layer('RPNHead.rpn_cls')
    cursor.add_layer('RPNHead.rpn_reg')
    cursor.begin()
    for _ in range(3):
        cursor.start_level(LEVEL_INDEX)
    with pytest.raises(
            RuntimeError,
            match=r'^RPNHead has implicits for 3 pyramid levels on rpn_cls, '
            r'rpn_reg but started a 4th level in one forward\. ' + SHARE):
        cursor.start_level(LEVEL_INDEX)
    assert cursor.levels_started == 3


@pytest.mark.parametrize('per_level_entry', [True, False])
def test_a_layer_called_outside_a_forward_of_its_owner_is_an_error(
        per_level_entry):
    cursor = LevelCursor(5, 'FCOSHead', per_level_entry)
    slot = cursor.add_layer('FCOSHead.conv_cls')
    message = (r'^FCOSHead\.conv_cls has implicits for 5 pyramid levels and '
               r'takes its level from a forward of FCOSHead, but was called '
               r'outside one\. Call the head \(head\(feats\)\), or: ' + SHARE +
               '$')
    with pytest.raises(RuntimeError, match=message):
        cursor.level_of(slot)
    # nor after a forward ended
    cursor.begin()
    cursor.end(check=False)
    with pytest.raises(RuntimeError, match=message):
        cursor.level_of(slot)


def test_a_layer_called_before_the_first_forward_single_is_an_error():
    cursor = LevelCursor(5, 'FCOSHead', per_level_entry=True)
    slot = cursor.add_layer('FCOSHead.conv_cls')
    cursor.begin()
    with pytest.raises(
            RuntimeError,
            match=r'^FCOSHead\.conv_cls ran before the first forward_single '
            r'of FCOSHead, which starts its levels\. ' + SHARE + '$'):
        cursor.level_of(slot)


def test_per_call_count_level_is_the_position_among_the_layer_calls():
    cursor = LevelCursor(3, 'TOODHead', per_level_entry=False)
    cls, reg = cursor.add_layer('TOODHead.cls'), cursor.add_layer(
        'TOODHead.reg')
    cursor.begin()
    # interleaved calls: each layer counts its own
    assert [cursor.level_of(cls), cursor.level_of(cls)] == [0, 1]
    assert cursor.level_of(reg) == 0
    assert cursor.level_of(cls) == 2
    assert [cursor.level_of(reg), cursor.level_of(reg)] == [1, 2]
    assert cursor.calls == [3, 3]
    cursor.end(check=True)


def test_per_call_count_more_calls_than_levels_is_an_error():
    cursor = LevelCursor(3, 'TOODHead', per_level_entry=False)
    cursor.add_layer('TOODHead.tood_reg')
    slot = cursor.add_layer('TOODHead.tood_cls')
    cursor.begin()
    for _ in range(3):
        cursor.level_of(slot)
    with pytest.raises(
            RuntimeError,
            match=r'^TOODHead\.tood_cls has implicits for 3 pyramid levels '
            r'but was called a 4th time in one forward of TOODHead\. ' +
            SHARE + '$'):
        cursor.level_of(slot)
    assert cursor.calls == [0, 3]  # the refused call is not counted


@pytest.mark.parametrize('levels', [0, 3])
def test_end_accepts_every_level_or_none(levels):
    entry = LevelCursor(3, 'Head', per_level_entry=True)
    entry.add_layer('Head.cls')
    entry.begin()
    for _ in range(levels):
        entry.start_level(LEVEL_INDEX)
        entry.level_of(0)
    entry.end(check=True)
    assert not entry.active

    counted = LevelCursor(3, 'Head', per_level_entry=False)
    counted.add_layer('Head.cls')
    counted.add_layer('Head.reg')
    counted.begin()
    for _ in range(levels):
        counted.level_of(0)
        counted.level_of(1)
    counted.end(check=True)
    assert not counted.active


def test_end_check_per_level_entry_with_part_of_the_levels_is_an_error():
    cursor = LevelCursor(5, 'FCOSHead', per_level_entry=True)
    cursor.add_layer('FCOSHead.conv_cls')
    cursor.add_layer('FCOSHead.conv_reg')
    cursor.begin()
    for _ in range(2):
        cursor.start_level(LEVEL_INDEX)
    with pytest.raises(
            RuntimeError,
            match=r'^FCOSHead has implicits for 5 pyramid levels, but in '
            r'this forward conv_cls, conv_reg ran 2 levels, so its levels '
            r'and implicits do not match\. ' + SHARE + '$'):
        cursor.end(check=True)
    assert not cursor.active  # ended even though it raised


def test_end_check_per_call_count_names_the_first_partial_layer():
    cursor = LevelCursor(3, 'TOODHead', per_level_entry=False)
    for name in ('cls', 'reg', 'obj', 'extra'):
        cursor.add_layer(f'TOODHead.{name}')
    cursor.begin()
    for _ in range(3):
        cursor.level_of(0)  # every level
    for _ in range(2):
        cursor.level_of(1)  # two of three: named
    cursor.level_of(2)  # one of three: after the first partial one
    # 'extra' did not run in this forward: that is no mismatch by itself
    with pytest.raises(
            RuntimeError,
            match=r'^TOODHead has implicits for 3 pyramid levels, but in '
            r'this forward TOODHead\.reg ran 2 times, so its levels and '
            r'implicits do not match\. ' + SHARE + '$'):
        cursor.end(check=True)
    assert not cursor.active


def test_a_layer_that_did_not_run_is_no_mismatch():
    cursor = LevelCursor(3, 'Head', per_level_entry=False)
    cursor.add_layer('Head.cls')
    cursor.add_layer('Head.unused')
    cursor.begin()
    for _ in range(3):
        cursor.level_of(0)
    cursor.end(check=True)


@pytest.mark.parametrize('per_level_entry', [True, False])
def test_end_without_check_after_an_interruption(per_level_entry):
    cursor = LevelCursor(3, 'Head', per_level_entry)
    slot = cursor.add_layer('Head.cls')
    cursor.begin()
    cursor.start_level(LEVEL_INDEX)
    cursor.level_of(slot)  # one level of three, then the forward raised
    cursor.end(check=False)
    assert not cursor.active
    # the next forward starts at level 0
    cursor.begin()
    levels = []
    for _ in range(3):
        cursor.start_level(LEVEL_INDEX)
        levels.append(cursor.level_of(slot))
    assert levels == [0, 1, 2]
    cursor.end(check=True)


def test_messages_name_layer_paths_below_the_head():
    cursor = LevelCursor(2, 'CascadeRPNHead', per_level_entry=True)
    cursor.add_layer('CascadeRPNHead.stages.1.rpn_cls')
    cursor.begin()
    cursor.start_level(LEVEL_INDEX)
    with pytest.raises(
            RuntimeError, match=r'this forward stages\.1\.rpn_cls ran 1 '):
        cursor.end(check=True)


@pytest.mark.parametrize('number,text', [(1, '1st'), (2, '2nd'), (3, '3rd'),
                                         (4, '4th'), (11, '11th'),
                                         (12, '12th'), (13, '13th'),
                                         (21, '21st'), (22, '22nd'),
                                         (111, '111th')])
def test_ordinal(number, text):
    assert ordinal(number) == text


def test_a_second_level_of_a_one_level_cursor_says_2nd():
    # a site without a layer path below the head is named as it is
    cursor = LevelCursor(1, 'Head', per_level_entry=True)
    cursor.add_layer('conv')
    cursor.begin()
    cursor.start_level(LEVEL_INDEX)
    with pytest.raises(
            RuntimeError, match=r'on conv but started a 2nd level in one'):
        cursor.start_level(LEVEL_INDEX)


# --- LevelOwnerMixin ---------------------------------------------------------


def test_owner_without_a_cursor_runs_as_its_type():
    head = mix_into(MultiApplyHead(), LevelOwnerMixin)
    head.probe = nn.Identity()
    assert head.yolor_levels is None
    x = torch.ones(1, 2, 1, 1)
    cls_scores, _ = head([x, x])
    assert len(cls_scores) == 2
    assert torch.equal(head.forward_single(x)[0], x)
    assert head.yolor_levels is None  # forward made none


def test_level_cursor_is_made_once_from_the_head():
    head = mix_into(MultiApplyHead(strides=(4, 8, 16, 32)), LevelOwnerMixin)
    cursor = head.level_cursor()
    assert head.level_cursor() is cursor is head.yolor_levels
    assert (cursor.num_levels, cursor.head_type,
            cursor.per_level_entry) == (4, 'MultiApplyHead', True)
    looping = mix_into(LoopingHead(), LevelOwnerMixin).level_cursor()
    assert (looping.num_levels, looping.head_type,
            looping.per_level_entry) == (3, 'LoopingHead', False)


def test_the_owner_holds_its_level_index_in_a_buffer_outside_its_state():
    head = owner(strides=(4, 8, 16, 32))
    # a buffer, so that it follows the model's device
    assert 'yolor_level_index' in dict(head.named_buffers())
    assert 'yolor_level_index' not in head.state_dict()
    head(features(4))
    assert head.yolor_levels.level_index is head.yolor_level_index
    assert head.yolor_level_index.tolist() == [3]


def test_each_forward_single_starts_a_level():
    head = owner()
    for _ in range(2):  # every forward starts at level 0 again
        head.probe.seen.clear()
        cls_scores, _ = head(features())
        assert head.probe.seen == [0, 0, 1, 1, 2, 2]
        assert not head.yolor_levels.active
        torch.testing.assert_close(cls_scores[2], features()[2] * 2)


def test_a_head_looping_over_its_levels_counts_each_layer_calls():
    head = owner(LoopingHead)
    for _ in range(2):
        head.first.seen.clear()
        head.second.seen.clear()
        outputs = head(features())
        assert head.first.seen == head.second.seen == [0, 1, 2]
        assert not head.yolor_levels.active
    torch.testing.assert_close(outputs[1], features()[1] * 4)


def test_owner_forward_over_part_of_the_levels_is_an_error():
    head = owner()
    with pytest.raises(
            RuntimeError,
            match=r'^MultiApplyHead has implicits for 3 pyramid levels, but '
            r'in this forward probe ran 2 levels'):
        head(features(2))
    assert not head.yolor_levels.active
    looping = owner(LoopingHead)
    with pytest.raises(
            RuntimeError, match=r'this forward LoopingHead\.first ran 1 '):
        looping(features(1))
    # no stale state
    head(features())
    looping(features())


def test_owner_forward_over_more_features_than_levels_is_an_error():
    with pytest.raises(
            RuntimeError,
            match=r'^MultiApplyHead has implicits for 3 pyramid levels on '
            r'probe but started a 4th level in one forward'):
        owner()(features(4))
    with pytest.raises(
            RuntimeError,
            match=r'^LoopingHead\.first has implicits for 3 pyramid levels '
            r'but was called a 4th time in one forward of LoopingHead'):
        owner(LoopingHead)(features(4))


def test_error_inside_the_forward_is_raised_as_is_and_resets_the_cursor():
    head = owner()
    broken = features()
    broken[1] = torch.empty(0)
    # the layer's own error, not a level mismatch of the ended forward
    with pytest.raises(ValueError, match='an empty feature'):
        head(broken)
    assert not head.yolor_levels.active
    assert head.probe.seen == [0, 0]
    head.probe.seen.clear()
    head(features())
    assert head.probe.seen == [0, 0, 1, 1, 2, 2]


def test_forward_single_called_on_its_own_has_no_level():
    head = owner()
    with pytest.raises(
            RuntimeError,
            match=r'^MultiApplyHead\.probe has implicits for 3 pyramid '
            r'levels and takes its level from a forward of MultiApplyHead, '
            r'but was called outside one'):
        head.forward_single(features()[0])
    assert head.yolor_levels.levels_started == 0


def test_deepcopy_gives_the_copy_its_own_cursor():
    # EMA deep-copies the model: the copy's layers read the copy's cursor
    head = owner()
    clone = copy.deepcopy(head)
    assert clone.yolor_levels is not head.yolor_levels
    assert clone.probe.cursor is clone.yolor_levels
    assert type(clone) is type(head)
    clone(features())
    assert clone.probe.seen == [0, 0, 1, 1, 2, 2]
    assert head.probe.seen == []


def test_a_graph_break_in_forward_single_recompiles_per_shape_not_level():
    # dynamo resumes inside forward_single in one frame for every level: the
    # refined layer there selects its level by the cursor's tensor, so the
    # frame recompiles for a new shape as the baseline's does, not per level
    torch.manual_seed(0)
    plain = BreakingHead()
    head = mix_into(copy.deepcopy(plain), LevelOwnerMixin)
    attach_prediction_refinement(head.conv_cls, head.level_cursor(), {},
                                 'BreakingHead.conv_cls')
    feats = [torch.randn(1, 2, 16 >> level, 16 >> level) for level in range(3)]
    baseline = count_compilation(plain, feats)
    yolor = count_compilation(head, feats)
    assert (yolor.frames, yolor.graph_breaks,
            yolor.recompiles) == (baseline.frames, baseline.graph_breaks,
                                  baseline.recompiles)
    # with each level's own (random) implicits: compiled, every level
    # still meets its own
    assert yolor.max_error < 1e-6
