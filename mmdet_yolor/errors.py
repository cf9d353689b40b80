# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The errors raised when a user's input is wrong."""
import pickle


class InputError(ValueError):
    """A config, data file or checkpoint given by the user is wrong.

    The message says what is wrong, in which file or key, and how to fix it.
    The tools print it as their last line, without a traceback, and exit
    with status 1 (see :func:`mmdet_yolor.runs.exit_on_input_error`).
    """


class CheckpointError(InputError):
    """A checkpoint cannot be used: corrupt, unsafe or of another model."""


class UnreadableCheckpointError(CheckpointError, RuntimeError):
    """A checkpoint file is truncated or not a checkpoint (a RuntimeError,
    as torch raises for it)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holds pickled objects that are not allowed (an
    UnpicklingError, as torch raises for it)."""
