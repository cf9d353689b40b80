# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fixes to defects of the OpenMMLab stack this plugin runs on.

Each fix is small, documented and tested (tests/test_compat.py); none edits
an installed package.

1. Resuming under torch >= 2.6 (:func:`register_checkpoint_loader`).
   ``torch.load`` defaults to ``weights_only=True`` since torch 2.6, and the
   resume checkpoints of mmengine 0.10.7 pickle its ``HistoryBuffer`` (whose
   default pickling goes through ``builtins.getattr``) and numpy arrays, so
   ``--resume`` fails with ``Weights only load failed``. Allow-listing
   ``getattr`` would void the protection, so the fix instead (a) pickles
   ``HistoryBuffer`` from its arrays alone and (b) re-registers mmengine's
   loader of local files to keep ``weights_only=True`` while allow-listing
   ``HistoryBuffer`` and numpy's array types. A checkpoint that still holds
   other objects (one written without this plugin imported) is refused with
   a message naming ``MMDET_YOLOR_TRUST_CHECKPOINTS=1``, which loads it with
   full unpickling.
2. Atomic checkpoint writes (:func:`register_atomic_local_backend`).
   mmengine writes checkpoints with ``open(path, 'wb').write``, so a job
   killed while saving leaves a truncated file. Local writes through
   mmengine's file backend now go to a temporary file in the same directory
   that replaces the target only once complete.
3. Multi-process training without CUDA (:func:`setup_distributed`).
   mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP
   wrapper passes CUDA ``device_ids``. On a machine without CUDA the fix
   starts the process group on gloo itself (mmengine then skips
   ``init_dist``) and builds DDP with ``device_ids=None``. With CUDA
   nothing changes: nccl, one process per GPU.
"""
import copyreg
import os
import pickle
import tempfile

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from .errors import InputError

TRUST_CHECKPOINTS_ENV = 'MMDET_YOLOR_TRUST_CHECKPOINTS'

_multiarray = (getattr(np, '_core', None) or np.core).multiarray
# What mmengine checkpoints hold besides tensors and plain Python values:
# the message hub's HistoryBuffers and numpy arrays and scalars.
CHECKPOINT_SAFE_GLOBALS = [
    HistoryBuffer,
    np.ndarray,
    np.dtype,
    _multiarray._reconstruct,
    _multiarray.scalar,
    *sorted({type(np.dtype(code))
             for code in 'bBhHiIlLqQefdgFDG?'}, key=str),
]


class CheckpointError(InputError):
    """A checkpoint cannot be used: corrupt, unsafe or of another model."""


def _reduce_history_buffer(buffer: HistoryBuffer) -> tuple:
    """Pickle a HistoryBuffer as ``HistoryBuffer(log, count, max_length)``
    instead of its ``__dict__``, so loading needs no ``getattr``."""
    return HistoryBuffer, (buffer._log_history, buffer._count_history,
                           buffer.max_length)


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """Load a local checkpoint with ``weights_only=True``, allowing the
    types in :data:`CHECKPOINT_SAFE_GLOBALS`.

    Raises:
        FileNotFoundError: If ``filename`` does not exist.
        CheckpointError: If it is not a readable checkpoint (corrupt or
            truncated), or holds other objects (the message names the
            environment variable that loads it anyway).
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    if os.environ.get(TRUST_CHECKPOINTS_ENV) == '1':
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if 'Unsupported global' not in str(error):
            raise CheckpointError(
                f'checkpoint {filename} is not a readable checkpoint '
                f'(corrupt or truncated?): {error}') from None
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        raise CheckpointError(
            f'checkpoint {filename} holds pickled objects that are not '
            f'safe to load ({", ".join(unsafe)}); it was probably written '
            f'without mmdet_yolor imported. If you trust the file, set '
            f'{TRUST_CHECKPOINTS_ENV}=1 to load it.') from None
    except (RuntimeError, EOFError, ValueError) as error:
        raise CheckpointError(f'checkpoint {filename} is not a readable '
                              f'checkpoint (corrupt or truncated?): '
                              f'{error}') from None


def register_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with
    :func:`load_local_checkpoint` and pickle HistoryBuffers from their
    arrays (fix 1)."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    CheckpointLoader.register_scheme(
        prefixes='', force=True)(
            load_local_checkpoint)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing each file atomically: into a
    temporary file next to it, flushed to disk, then renamed over it."""

    def put(self, obj: bytes, filepath) -> None:
        self._write_atomically(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self._write_atomically(obj.encode(encoding), str(filepath))

    @staticmethod
    def _write_atomically(data: bytes, filepath: str) -> None:
        directory = os.path.dirname(os.path.abspath(filepath))
        os.makedirs(directory, exist_ok=True)
        handle, tmp_path = tempfile.mkstemp(
            dir=directory, prefix=f'.{os.path.basename(filepath)}.')
        try:
            with os.fdopen(handle, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, filepath)
        except BaseException:
            os.unlink(tmp_path)
            raise


def register_atomic_local_backend() -> None:
    """Make mmengine write local files (checkpoints) atomically (fix 2)."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def setup_distributed(cfg: Config) -> None:
    """Prepare a multi-process run on a machine without CUDA (fix 3).

    With ``cfg.launcher == 'pytorch'`` (torchrun, ``tools/dist_train.sh``)
    and no CUDA device, start the default process group on gloo and build
    the DDP wrapper without ``device_ids``. Does nothing for single-process
    runs or when CUDA is available.

    Raises:
        RuntimeError: For the slurm or mpi launcher without CUDA.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA devices, and none is visible. '
            f'On CPU-only machines start the processes with '
            f'tools/dist_train.sh (--launcher pytorch, gloo backend); across '
            f'nodes set NNODES, NODE_RANK, MASTER_ADDR and PORT.')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
