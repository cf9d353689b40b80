# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Reading the output levels of a neck by a probe run, and the errors that
tell the user how to give them instead."""
import pytest
import torch
from mmdet.registry import MODELS
from torch import nn

from mmdet_yolor.errors import InputError
from mmdet_yolor.models.necks.probe import (NECK_PROBE_SIZE, neck_probe_inputs,
                                            output_level_channels,
                                            probe_output_channels)

FPN_CFG = dict(type='FPN', in_channels=[4, 8, 16], out_channels=6, num_outs=4)


def shapes(candidate):
    return [tuple(t.shape) for t in candidate]


def test_probe_inputs_halve_from_the_probe_size_as_listed_then_reversed():
    size = NECK_PROBE_SIZE
    listed, reversed_, with_image = neck_probe_inputs(FPN_CFG)
    pyramid = [(1, 4, size, size), (1, 8, size // 2, size // 2),
               (1, 16, size // 4, size // 4)]
    assert shapes(listed) == pyramid
    assert shapes(reversed_) == [(1, 16, size, size),
                                 (1, 8, size // 2, size // 2),
                                 (1, 4, size // 4, size // 4)]
    # an image before the pyramid, for necks that also read it (RFP)
    assert shapes(with_image) == [(1, 3, 4 * size, 4 * size)] + pyramid
    assert all(t.abs().sum() == 0 for t in listed)


def test_an_int_in_channels_makes_num_levels_levels():
    [candidate] = neck_probe_inputs(dict(in_channels=5, num_levels=3))
    assert [t.shape[1] for t in candidate] == [5, 5, 5]
    [candidate] = neck_probe_inputs(dict(in_channels=5))
    assert shapes(candidate) == [(1, 5, NECK_PROBE_SIZE, NECK_PROBE_SIZE)]


def test_a_list_of_necks_is_probed_with_the_first_necks_channels():
    candidates = neck_probe_inputs([FPN_CFG, dict(in_channels=6)])
    assert [t.shape[1] for t in candidates[0]] == [4, 8, 16]


def test_a_neck_without_in_channels_has_no_probe_inputs():
    assert neck_probe_inputs(dict(type='Custom')) == []


def test_the_probe_reads_the_channels_of_every_output_level():
    neck = MODELS.build(FPN_CFG)
    assert probe_output_channels(neck, neck_probe_inputs(FPN_CFG)) == [6] * 4


class Picky(nn.Module):
    """Runs on one input of 2 channels only; returns two levels."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(2)

    def forward(self, inputs):
        x = self.bn(inputs[0])
        return [x, torch.cat([x, x], 1)]


def test_the_probe_tries_candidates_in_turn_and_restores_training_mode():
    module = Picky().train()
    module.bn.eval()
    candidates = [[torch.zeros(1, 3, 4, 4)], [torch.zeros(1, 2, 4, 4)]]
    assert probe_output_channels(module, candidates) == [2, 4]
    assert module.training and not module.bn.training
    # eval mode: the probe does not update the BN statistics
    assert module.bn.num_batches_tracked == 0


def test_a_failed_probe_reports_the_error_of_the_first_candidate():
    candidates = [[torch.zeros(1, 3, 4, 4)], [torch.zeros(1, 5, 4, 4)]]
    with pytest.raises(RuntimeError) as error:
        probe_output_channels(Picky(), candidates)
    # the first candidate is the usual input: its error says most
    assert str(error.value).startswith('RuntimeError: ')
    assert 'contain 3 elements' in str(error.value)
    with pytest.raises(RuntimeError, match='no in_channels'):
        probe_output_channels(Picky(), [])


class Unprobeable(nn.Module):

    def forward(self, inputs):
        raise AssertionError('must not run')


def test_given_channels_and_levels_take_precedence_without_a_probe():
    module = Unprobeable()
    assert output_level_channels('W', module, [], None, [3, 5]) == [3, 5]
    assert output_level_channels('W', module, [], 3, 7) == [7, 7, 7]


def test_given_channels_or_levels_complete_the_probed_ones():
    candidates = [[torch.zeros(1, 2, 4, 4)]]
    assert output_level_channels('W', Picky(), candidates, None,
                                 None) == [2, 4]
    assert output_level_channels('W', Picky(), candidates, None, 9) == [9, 9]
    # more levels than probed: the last probed level's channels repeat
    assert output_level_channels('W', Picky(), candidates, 3,
                                 None) == [2, 4, 4]
    assert output_level_channels('W', Picky(), candidates, 1, None) == [2]


def test_a_failed_probe_tells_the_user_which_options_to_pass():
    with pytest.raises(InputError) as error:
        output_level_channels('YOLORNeck', Picky(),
                              [[torch.zeros(1, 3, 4, 4)]], None, None)
    message = str(error.value)
    assert message.startswith(
        'YOLORNeck could not tell the output levels of Picky')
    assert 'RuntimeError' in message
    assert 'Pass alignment_levels=... and alignment_channels=... to ' \
        'YOLORNeck.' in message
