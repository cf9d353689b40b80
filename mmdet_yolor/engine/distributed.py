# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Multi-process training on machines without CUDA (stack fix
``cpu_distributed``, applied per run by the tools).

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` for every launcher
(torchrun, Slurm, MPI) and its DDP wrapper passes CUDA ``device_ids``. On a
machine without CUDA, :func:`setup_distributed` runs ``init_dist`` on gloo
with the device selection skipped (mmengine then skips its own) and builds
DDP with ``device_ids=None``: ``tools/dist_train.sh`` and
``tools/slurm_train.sh`` run CPU processes. With CUDA nothing changes:
nccl, one process per GPU. ``MMDET_YOLOR_DISABLE_FIXES=cpu_distributed``
keeps mmengine's behaviour.
"""
import contextlib
import gc
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import init_dist
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.utils.dl_utils import set_multi_processing

from ..compat import is_disabled, record_applied

FIX_NAME = 'cpu_distributed'


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
    """Prepare a multi-process run on a machine without CUDA.

    With ``cfg.launcher`` ``'pytorch'`` (torchrun, ``tools/dist_train.sh``),
    ``'slurm'`` (``srun``, ``tools/slurm_train.sh``) or ``'mpi'`` and no CUDA
    device, start the default process group on gloo through mmengine's
    ``init_dist`` (which reads the launcher's environment: ``RANK``, or
    ``SLURM_PROCID`` and the master from ``scontrol show hostname``), its
    CUDA device selection skipped, and build the DDP wrapper without
    ``device_ids``. Does nothing for single-process runs, when CUDA is
    available, or when the fix is disabled.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available() or \
            is_disabled(FIX_NAME):
        return
    record_applied(
        FIX_NAME, "mmengine's launchers and DDP wrapper select a CUDA "
        'device, and this machine has none')
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


def end_distributed(runner: Optional[Runner] = None) -> None:
    """Shut the process group down once a run has finished. Left to
    interpreter exit, gloo's threads can abort a process whose run succeeded
    ("terminate called without an active exception"); torch asks for
    ``destroy_process_group`` before exit. The DDP wrapper of ``runner``'s
    model holds the group too (its reducer) and would keep it to interpreter
    exit all the same: the runner keeps the wrapped model instead, and the
    wrapper is freed first. Does nothing in a single-process run."""
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if runner is not None and is_model_wrapper(runner.model):
        runner.model = runner.model.module
        gc.collect()
    torch_dist.destroy_process_group()
