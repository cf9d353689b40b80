# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The error raised when a user's input is wrong."""


class InputError(ValueError):
    """A config, data file or checkpoint given by the user is wrong.

    The message says what is wrong, in which file or key, and how to fix it.
    The tools print it as their last line, without a traceback, and exit
    with status 1 (see :func:`mmdet_yolor.launch.exit_on_input_error`).
    """
