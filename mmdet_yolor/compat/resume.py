# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``resume``: ``--resume`` where ``torch.load`` loads weights-only by
default (torch >= 2.6).

The resume checkpoints of mmengine 0.10.7 hold numpy arrays and its
``HistoryBuffer``, which such a ``torch.load`` refuses: ``--resume`` fails
with ``Weights only load failed``. Allow-listing what mmengine pickles
through (``builtins.getattr``) would void the protection, so the fix loads
local checkpoints as mmengine does, with torch's default ``weights_only``
but ``HistoryBuffer`` and numpy's array types allowed, the latter under the
names of numpy 1 and 2 (a checkpoint written on a numpy-1 stack loads on a
numpy-2 one and back); :mod:`.history_buffer` makes the buffers pickle
without ``getattr``. A checkpoint that still holds other objects (one
written without this plugin imported) is refused with a message naming
``MMDET_YOLOR_TRUST_CHECKPOINTS=1``, which loads it with full unpickling; an
unreadable one with one line saying so. :func:`load_from_local` is also the
plugin's own checkpoint reader, whether the fix is applied or not.
"""
import os
import pickle
import warnings
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from ..errors import UnreadableCheckpointError, UnsafeCheckpointError
from ..stack_api import (loads_weights_only_by_default, numpy_pickle_aliases,
                         numpy_pickle_functions, safe_globals,
                         safe_globals_take_names)
from .registry import Fix

TRUST_CHECKPOINTS_ENV = 'MMDET_YOLOR_TRUST_CHECKPOINTS'

# What mmengine checkpoints hold besides tensors and plain Python values:
# the message hub's HistoryBuffers and numpy arrays and scalars.
CHECKPOINT_SAFE_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    *numpy_pickle_functions().values(),
    *sorted({type(np.dtype(code))
             for code in 'bBhHiIlLqQefdgFDG?'}, key=str),
]

# HistoryBuffers pickle through ``getattr`` unless the fix
# ``history_buffer_pickle`` was applied when the checkpoint was written.
_GETATTR_HINT = ('; a checkpoint with builtins.getattr was probably written '
                 'without mmdet_yolor imported')


def _allowing_checkpoint_globals():
    """A context allowing :data:`CHECKPOINT_SAFE_GLOBALS` in weights-only
    loads, and numpy's pickle functions under the names of both numpy 1 and
    2 where torch takes such names (>= 2.6, the first to load weights-only
    by default)."""
    if safe_globals_take_names():
        return safe_globals(CHECKPOINT_SAFE_GLOBALS + numpy_pickle_aliases())
    return safe_globals(CHECKPOINT_SAFE_GLOBALS)


def load_from_local(filename: str, map_location=None) -> dict:
    """Load a local checkpoint as mmengine's ``load_from_local`` does (with
    torch's default ``weights_only``), also allowing the types in
    :data:`CHECKPOINT_SAFE_GLOBALS`. Its name is mmengine's: mmengine reads
    a loader's scheme (``local``) from it.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        UnreadableCheckpointError: If it is not a readable checkpoint
            (truncated or corrupt), in one line.
        UnsafeCheckpointError: If it holds other objects; the message names
            the environment variable that loads it anyway.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    if os.environ.get(TRUST_CHECKPOINTS_ENV) == '1':
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        with _allowing_checkpoint_globals(), warnings.catch_warnings():
            # torch 2.4-2.5 warn that weights_only will default to True:
            # this loader is ready for it (torch >= 2.6 loads so)
            warnings.filterwarnings(
                'ignore', message='.*weights_only', category=FutureWarning)
            return torch.load(filename, map_location=map_location)
    except pickle.UnpicklingError as error:
        if 'Unsupported global' not in str(error):
            raise _unreadable(filename) from None
        unsafe = _disallowed_globals(filename)
        hint = _GETATTR_HINT if 'builtins.getattr' in unsafe else ''
        raise UnsafeCheckpointError(
            f'checkpoint {filename} holds pickled objects that are not '
            f'safe to load ({", ".join(unsafe)}){hint}. If you trust the '
            f'file, set {TRUST_CHECKPOINTS_ENV}=1 to load it.') from None
    except (RuntimeError, EOFError, ValueError):
        raise _unreadable(filename) from None


def _disallowed_globals(filename: str) -> List[str]:
    """The globals in ``filename`` that neither torch nor
    :func:`_allowing_checkpoint_globals` allows."""
    with _allowing_checkpoint_globals():
        return sorted(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))


def _unreadable(filename: str) -> UnreadableCheckpointError:
    return UnreadableCheckpointError(
        f'checkpoint {filename} is not a readable checkpoint (truncated or '
        f'corrupt): use another one, e.g. the previous epoch\'s, or resume '
        f'with --resume, which skips damaged checkpoints.')


def register_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with :func:`load_from_local`."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)


FIX = Fix(
    name='resume',
    defect='torch.load loads weights-only by default, and refuses the '
    'numpy arrays and HistoryBuffers of mmengine\'s resume checkpoints',
    probe=loads_weights_only_by_default,
    apply=register_checkpoint_loader)
