# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The errors of a user's input: one family the tools print as a line,
each also the error type torch raises for the same failure, so that code
written against torch catches them."""
import pickle

import pytest

from mmdet_yolor.errors import (CheckpointError, InputError,
                                UnreadableCheckpointError,
                                UnsafeCheckpointError)


@pytest.mark.parametrize(
    'error',
    [CheckpointError, UnreadableCheckpointError, UnsafeCheckpointError])
def test_every_checkpoint_error_is_an_input_error(error):
    assert issubclass(error, InputError) and issubclass(error, ValueError)


def test_an_unreadable_checkpoint_is_caught_as_torch_raises_it():
    with pytest.raises(RuntimeError, match='truncated'):
        raise UnreadableCheckpointError('truncated')


def test_an_unsafe_checkpoint_is_caught_as_torch_raises_it():
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        raise UnsafeCheckpointError('not allowed')
    assert not issubclass(UnsafeCheckpointError, RuntimeError)
