# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fixes to defects of the OpenMMLab stack this plugin runs on.

Each fix is small, documented, tested (tests/test_compat.py) and a strict
superset of stock behaviour: whatever the stock stack does, it still does;
none edits an installed package, and what a fix puts in place of a stock
function or class has its name (mmengine reads a checkpoint loader's
scheme from its ``__name__``, ``load_from_local``: ``local``; code checks a
file backend's ``name``, its class name). Importing :mod:`mmdet_yolor`
applies the process-wide ones once (:func:`apply_fixes`); list their names
in the environment variable ``MMDET_YOLOR_DISABLE_FIXES`` (or ``all``) to
keep the stock behaviour, e.g. in a codebase that imports only the layers.

1. ``resume``: resuming under torch >= 2.6 (:func:`register_checkpoint_
   loader`). ``torch.load`` defaults to ``weights_only=True`` since torch
   2.6, and the resume checkpoints of mmengine 0.10.7 pickle its
   ``HistoryBuffer`` (whose default pickling goes through
   ``builtins.getattr``) and numpy arrays, so ``--resume`` fails with
   ``Weights only load failed``. Allow-listing ``getattr`` would void the
   protection, so the fix instead (a) pickles ``HistoryBuffer`` from its
   arrays alone (stock mmengine reads those pickles too) and (b) loads local
   checkpoints as mmengine does, with torch's default ``weights_only`` but
   ``HistoryBuffer`` and numpy's array types allowed, the latter under the
   names of numpy 1 and 2 (a checkpoint written on a numpy-1 stack loads on
   a numpy-2 one and back). A checkpoint that still
   holds other objects (one written without this plugin imported) is refused
   with a message naming ``MMDET_YOLOR_TRUST_CHECKPOINTS=1``, which loads it
   with full unpickling; an unreadable one with one line saying so.
2. ``atomic_checkpoints``: atomic checkpoint writes (:func:`register_atomic_
   local_backend`). mmengine writes checkpoints with ``open(path,
   'wb').write``, so a job killed while saving leaves a truncated file. Local
   writes through mmengine's file backend now go to a temporary file in the
   same directory that replaces the target only once complete, with the
   permissions ``open`` would give it (the umask, or those of the file it
   replaces). Every other file operation is mmengine's.
3. ``ssd_predict``: SSD predicts (:func:`let_ssd_predict`). mmdet 3.3.0's
   ``BaseDenseHead.predict_by_feat`` reads ``self.loss_cls``, which
   ``SSDHead`` never sets (it computes its loss itself), so every SSD
   config fails at validation and inference with ``'SSDHead' object has
   no attribute 'loss_cls'`` (open-mmlab/mmdetection#11305, #11780). The
   fix gives ``SSDHead`` a class attribute ``loss_cls = None``, read only
   where stock mmdet raised.
4. ``compile``: ``compile=True`` trains (:func:`compile_forward_and_loss`).
   mmengine 0.10.7's ``Runner`` compiles the whole ``train_step``, the
   optimizer step included, and on torch >= 2.6 dynamo dies inside
   ``torch/optim`` (``InternalTorchDynamoError: 'UserDefinedDictVariable'
   object has no attribute 'items'``), for any model. The fix lets the
   stock code compile the model's ``_run_forward`` instead (forward and
   loss, with the config's ``compile`` options) and uses the compiled one
   in ``mode='loss'`` only: the optimizer step, validation and testing run
   eagerly, as stock mmengine runs validation and testing.
5. ``multi_apply``: mmdet's dense heads compile in one graph on torch
   2.1-2.2 (:func:`trace_multi_apply`). mmdet's ``multi_apply`` runs a
   head's levels with ``map(func, *args)``, and dynamo before torch 2.3
   cannot trace ``map`` over several iterables (``incorrect arg count ...
   call_map``): every dense head breaks its graph there, each level
   compiles as a frame of its own and recompiles for the next (FCOS on
   torch 2.1: 14 frames, 6 graph breaks, 5 recompiles; YOLOR's wrappers,
   one Python frame more around it, 18). The fix gives ``multi_apply`` the
   same computation over ``zip`` (same calls in the same order, same
   results), which every torch traces: FCOS, ATSS and RetinaNet compile to
   one frame, with or without YOLOR. It swaps the function's code in place,
   so the modules that imported ``multi_apply`` by name get it too.
6. Multi-process training without CUDA (:func:`setup_distributed`, called
   by the tools for each run, not at import). mmengine's ``init_dist`` calls
   ``torch.cuda.set_device`` for every launcher (torchrun, Slurm, MPI) and
   its DDP wrapper passes CUDA ``device_ids``. On a machine without CUDA
   the fix runs ``init_dist`` on gloo with the device selection skipped
   (mmengine then skips its own) and builds DDP with ``device_ids=None``:
   ``tools/dist_train.sh`` and ``tools/slurm_train.sh`` run CPU processes.
   With CUDA nothing changes: nccl, one process per GPU.

The mmdeploy fixes (:data:`DEPLOY_FIXES`, tests/test_compat_deploy.py) are
applied by :func:`apply_deploy_fixes` when the deploy code first uses
mmdeploy, never at import (importing :mod:`mmdet_yolor` does not import
mmdeploy); ``MMDET_YOLOR_DISABLE_FIXES`` takes their names too:

7. ``onnx_torchscript_exporter``: mmdeploy 1.3.1 exports with the
   TorchScript exporter on torch >= 2.9 (:func:`export_onnx_with_
   torchscript`). mmdeploy calls ``torch.onnx.export`` without ``dynamo=``,
   and since torch 2.9 that selects the dynamo exporter, which does not
   run mmdeploy's function and symbolic rewrites (NMS, RoIAlign, the
   post-processing of every head) and here fails at once with
   ``ModuleNotFoundError: No module named 'onnxscript'``. The fix registers
   an mmdeploy rewriter of ``torch.onnx.export``, active only inside
   mmdeploy's export, that passes ``dynamo=False`` when the caller gave no
   ``dynamo``.
8. ``onnx_cast_long``: mmdeploy's RoIAlign symbolic for ONNX Runtime
   imports ``torch.onnx.symbolic_opset9._cast_Long``, which torch 2.13 no
   longer has, so exporting any R-CNN fails with ``ImportError: cannot
   import name '_cast_Long' from 'torch.onnx.symbolic_opset9'``
   (:func:`define_cast_long`). The fix defines it as torch <= 2.8 did, a
   ``Cast`` to int64, where it is missing.
"""
import contextlib
import copyreg
import functools
import gc
import inspect
import os
import pickle
import stat
import uuid
import warnings
from functools import partial
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as torch_dist
from mmdet.models.dense_heads import SSDHead
from mmdet.models.utils import misc as mmdet_misc
from mmengine.config import Config
from mmengine.dist import init_dist
from mmengine.fileio import LocalBackend as StockLocalBackend
from mmengine.fileio import register_backend
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils.dl_utils import set_multi_processing

from .errors import InputError
from .stack_api import (numpy_pickle_aliases, numpy_pickle_functions,
                        safe_globals_take_names)

TRUST_CHECKPOINTS_ENV = 'MMDET_YOLOR_TRUST_CHECKPOINTS'
DISABLE_FIXES_ENV = 'MMDET_YOLOR_DISABLE_FIXES'

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


class CheckpointError(InputError):
    """A checkpoint cannot be used: corrupt, unsafe or of another model."""


class UnreadableCheckpointError(CheckpointError, RuntimeError):
    """A checkpoint file is truncated or not a checkpoint (a RuntimeError,
    as torch raises for it)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holds pickled objects that are not allowed (an
    UnpicklingError, as torch raises for it)."""


def _reduce_history_buffer(buffer: HistoryBuffer) -> tuple:
    """Pickle a HistoryBuffer as ``HistoryBuffer(log, count, max_length)``
    instead of its ``__dict__``, so loading needs no ``getattr``."""
    return HistoryBuffer, (buffer._log_history, buffer._count_history,
                           buffer.max_length)


def _allowing_checkpoint_globals():
    """A context allowing :data:`CHECKPOINT_SAFE_GLOBALS` in weights-only
    loads (torch >= 2.5; older torch loads everything anyway), and numpy's
    pickle functions under the names of both numpy 1 and 2 where torch
    takes such names (>= 2.6, the first to load weights-only by default):
    a checkpoint written under numpy 1 (a torch 2.1 cluster) then loads
    under numpy 2, and one written under numpy 2 under numpy 1."""
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    if safe_globals is None:
        return contextlib.nullcontext()
    if safe_globals_take_names():
        return safe_globals(CHECKPOINT_SAFE_GLOBALS + numpy_pickle_aliases())
    return safe_globals(CHECKPOINT_SAFE_GLOBALS)


def load_from_local(filename: str, map_location=None) -> dict:
    """Load a local checkpoint as mmengine's ``load_from_local`` does (with
    torch's default ``weights_only``), also allowing the types in
    :data:`CHECKPOINT_SAFE_GLOBALS`.

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


# mmengine's HistoryBuffer pickles through ``getattr`` unless this plugin's
# fix ``resume`` was applied when the checkpoint was written.
_GETATTR_HINT = ('; a checkpoint with builtins.getattr was probably written '
                 'without mmdet_yolor imported')


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
    """Make mmengine load local checkpoints with
    :func:`load_from_local` and pickle HistoryBuffers from their
    arrays (fix ``resume``)."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)


class LocalBackend(StockLocalBackend):
    """mmengine's local file backend, writing each file atomically: into a
    temporary file next to it, flushed to disk, then renamed over it."""

    def put(self, obj: bytes, filepath) -> None:
        self._write_atomically(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self._write_atomically(obj.encode(encoding), str(filepath))

    @staticmethod
    def _write_atomically(data: bytes, filepath: str) -> None:
        target = os.path.realpath(filepath)  # write through symlinks
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        tmp_path = os.path.join(
            directory, f'.{os.path.basename(target)}.{uuid.uuid4().hex}.tmp')
        # as open(): 0o666 minus the umask, or the mode of the replaced file
        mode = stat.S_IMODE(
            os.stat(target).st_mode) if os.path.exists(target) else 0o666
        handle = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            if os.path.exists(target):
                os.chmod(tmp_path, mode)  # the umask does not apply then
            with os.fdopen(handle, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp_path, target)
        except BaseException:
            os.unlink(tmp_path)
            raise


def register_atomic_local_backend() -> None:
    """Make mmengine write local files (checkpoints) atomically (fix
    ``atomic_checkpoints``)."""
    register_backend('local', LocalBackend, force=True, prefixes='')


def let_ssd_predict() -> None:
    """Give ``SSDHead`` the ``loss_cls`` that mmdet's shared prediction
    code reads (fix ``ssd_predict``). An instance attribute, should a
    subclass set one, still takes precedence."""
    if not hasattr(SSDHead, 'loss_cls'):
        SSDHead.loss_cls = None


def compile_forward_and_loss() -> None:
    """Make mmengine's ``compile`` option compile the model's forward and
    loss instead of its whole ``train_step`` (fix ``compile``)."""
    stock = Runner._maybe_compile

    @functools.wraps(stock)
    def _maybe_compile(self, target: str) -> None:
        # a model without mmengine's ``_run_forward`` (not a BaseModel):
        # compiled as stock mmengine compiles it
        if target != 'train_step' or not hasattr(self.model, '_run_forward'):
            return stock(self, target)
        eager = self.model._run_forward
        # the stock code, options and log message, on another target
        stock(self, '_run_forward')
        compiled = self.model.__dict__.pop('_run_forward', eager)
        if compiled is not eager:
            self.model._run_forward = functools.partial(
                _run_loss_compiled, eager, compiled)

    Runner._maybe_compile = _maybe_compile


def _run_loss_compiled(eager: Callable, compiled: Callable, data, mode: str):
    """``_run_forward`` with the compiled function for the loss, the eager
    one for predictions (validation in a training run)."""
    return (compiled if mode == 'loss' else eager)(data, mode)


def _multi_apply_over_zip(func, *args, **kwargs):
    """mmdet's ``multi_apply`` with ``zip`` in place of ``map(func, *args)``
    (fix ``multi_apply``); its code runs with the globals of mmdet's
    function, which imports ``partial`` as this module does."""
    pfunc = partial(func, **kwargs) if kwargs else func
    map_results = [pfunc(*level_args) for level_args in zip(*args)]
    return tuple(map(list, zip(*map_results)))


def trace_multi_apply() -> None:
    """Give mmdet's ``multi_apply`` the code of
    :func:`_multi_apply_over_zip` (fix ``multi_apply``); its name, its
    globals (``partial``) and every reference to it stay."""
    stock = mmdet_misc.multi_apply.__code__
    names = {
        field: getattr(stock, field)
        for field in ('co_name', 'co_qualname')  # co_qualname: Python 3.11
        if hasattr(stock, field)
    }
    mmdet_misc.multi_apply.__code__ = _multi_apply_over_zip.__code__.replace(
        **names)


# The process-wide fixes, applied once by :func:`apply_fixes`.
IMPORT_FIXES: Dict[str, Callable[[], None]] = {
    'resume': register_checkpoint_loader,
    'atomic_checkpoints': register_atomic_local_backend,
    'ssd_predict': let_ssd_predict,
    'compile': compile_forward_and_loss,
    'multi_apply': trace_multi_apply,
}
_applied: List[str] = []


def apply_fixes() -> List[str]:
    """Apply each fix of :data:`IMPORT_FIXES` that is not applied yet nor
    listed in ``MMDET_YOLOR_DISABLE_FIXES`` (``all`` disables every one).

    Returns:
        list[str]: The fixes applied by this call.

    Raises:
        ValueError: If the variable names a fix that does not exist.
    """
    return _apply(IMPORT_FIXES)


def _apply(fixes: Dict[str, Callable[[], None]]) -> List[str]:
    """Apply each of ``fixes`` not applied yet nor disabled; return their
    names."""
    listed = {
        name.strip()
        for name in os.environ.get(DISABLE_FIXES_ENV, '').split(',')
        if name.strip()
    }
    unknown = listed - set(IMPORT_FIXES) - set(DEPLOY_FIXES) - {'all'}
    if unknown:
        raise ValueError(
            f'{DISABLE_FIXES_ENV} names unknown fixes {sorted(unknown)}; '
            f'use a comma-separated list of '
            f'{sorted(IMPORT_FIXES) + sorted(DEPLOY_FIXES)} or all')
    applied = []
    for name, fix in fixes.items():
        if name in _applied or name in listed or 'all' in listed:
            continue
        fix()
        _applied.append(name)
        applied.append(name)
    return applied


def end_distributed(runner: Optional[Runner] = None) -> None:
    """Shut the process group down once a run has finished (part of fix
    6). Left to interpreter exit, gloo's threads can abort a process whose
    run succeeded ("terminate called without an active exception"); torch
    asks for ``destroy_process_group`` before exit. The DDP wrapper of
    ``runner``'s model holds the group too (its reducer) and would keep it
    to interpreter exit all the same: the runner keeps the wrapped model
    instead, and the wrapper is freed first. Does nothing in a
    single-process run."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if runner is not None and is_model_wrapper(runner.model):
        runner.model = runner.model.module
        gc.collect()
    torch_dist.destroy_process_group()


@contextlib.contextmanager
def _without_device_selection():
    """Make ``torch.cuda.set_device`` a no-op: mmengine's launchers select
    each process's CUDA device, and without CUDA there is none."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def setup_distributed(cfg: Config) -> None:
    """Prepare a multi-process run on a machine without CUDA (fix 6).

    With ``cfg.launcher`` ``'pytorch'`` (torchrun, ``tools/dist_train.sh``),
    ``'slurm'`` (``srun``, ``tools/slurm_train.sh``) or ``'mpi'`` and no CUDA
    device, start the default process group on gloo through mmengine's
    ``init_dist`` (which reads the launcher's environment: ``RANK``, or
    ``SLURM_PROCID`` and the master from ``scontrol show hostname``), its
    CUDA device selection skipped, and build the DDP wrapper without
    ``device_ids``. Does nothing for single-process runs or when CUDA is
    available.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if not torch_dist.is_initialized():
        # the start method the runner will set (init_dist would pick spawn)
        set_multi_processing(**cfg.env_cfg.get('mp_cfg', {}), distributed=True)
        with _without_device_selection():
            init_dist(launcher, **cfg.env_cfg.dist_cfg)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


# ---- mmdeploy fixes (7, 8): applied by the deploy code, not at import ----


def _torchscript_export(*args, **kwargs):
    """mmdeploy's rewrite of ``torch.onnx.export`` (fix 7): the TorchScript
    exporter unless the caller chose one."""
    from mmdeploy.core import FUNCTION_REWRITER
    kwargs.setdefault('dynamo', False)
    return FUNCTION_REWRITER.get_context().origin_func(*args, **kwargs)


def export_onnx_with_torchscript() -> None:
    """Make mmdeploy's exports use the TorchScript exporter on a torch whose
    ``torch.onnx.export`` defaults to the dynamo one (fix
    ``onnx_torchscript_exporter``); nothing on torch < 2.9."""
    dynamo = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    if dynamo is None or dynamo.default is not True:
        return
    from mmdeploy.core import FUNCTION_REWRITER
    FUNCTION_REWRITER.register_rewriter('torch.onnx.export')(
        _torchscript_export)


def _cast_long(g, input, non_blocking):
    """``torch.onnx.symbolic_opset9._cast_Long`` of torch <= 2.8."""
    return g.op('Cast', input, to_i=torch.onnx.TensorProtoDataType.INT64)


def define_cast_long() -> None:
    """Define ``torch.onnx.symbolic_opset9._cast_Long`` where torch lacks it
    (fix ``onnx_cast_long``)."""
    from torch.onnx import symbolic_opset9
    if not hasattr(symbolic_opset9, '_cast_Long'):
        symbolic_opset9._cast_Long = _cast_long


# What mmdeploy 1.3.1 needs on torch >= 2.9, applied once by
# :func:`apply_deploy_fixes`.
DEPLOY_FIXES: Dict[str, Callable[[], None]] = {
    'onnx_torchscript_exporter': export_onnx_with_torchscript,
    'onnx_cast_long': define_cast_long,
}


def apply_deploy_fixes() -> List[str]:
    """Apply each fix of :data:`DEPLOY_FIXES` not applied yet nor listed in
    ``MMDET_YOLOR_DISABLE_FIXES``; the deploy code calls it before it uses
    mmdeploy.

    Returns:
        list[str]: The fixes applied by this call.
    """
    return _apply(DEPLOY_FIXES)
