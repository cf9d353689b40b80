# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Multi-process runs without CUDA (fix ``cpu_distributed``)."""
import os
import types
import weakref

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from mmdet_yolor.compat import DISABLE_FIXES_ENV, applied_fixes
from mmdet_yolor.engine.distributed import end_distributed, setup_distributed


def test_the_fix_can_be_disabled(monkeypatch):
    monkeypatch.setenv(DISABLE_FIXES_ENV, 'cpu_distributed')
    cfg = Config(dict(launcher='pytorch'))
    setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


def test_setup_distributed_does_nothing_single_process():
    cfg = Config(dict(launcher='none'))
    setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


def _setup_distributed_on_gloo(monkeypatch, cfg, **environment):
    """Run setup_distributed in the environment a launcher sets."""
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        setup_distributed(cfg)
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
        assert torch_dist.get_world_size() == 1
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None
    assert 'cpu_distributed' in applied_fixes()


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_uses_gloo_without_cuda(monkeypatch):
    cfg = Config(
        dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    _setup_distributed_on_gloo(  # what torchrun sets
        monkeypatch,
        cfg,
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT='29533')


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_runs_slurm_tasks_without_cuda(monkeypatch):
    _setup_distributed_on_gloo(  # what srun sets
        monkeypatch,
        Config(dict(launcher='slurm')),
        SLURM_PROCID='0',
        SLURM_LOCALID='0',
        SLURM_NTASKS='1',
        SLURM_NODELIST='localhost',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT='29534')
    # mmengine read the rank and world size from Slurm's variables
    assert os.environ['RANK'] == '0' and os.environ['WORLD_SIZE'] == '1'
    # the device selection is back for the rest of the process
    assert torch.cuda.set_device.__module__ == 'torch.cuda'


def test_end_distributed_shuts_the_process_group_down(tmp_path):
    torch_dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    # the runner's DDP wrapper (its reducer holds the group) is freed first
    from mmengine.model import MMDistributedDataParallel
    model = torch.nn.Linear(2, 2)
    wrapper = MMDistributedDataParallel(module=model, device_ids=None)
    freed = weakref.ref(wrapper)
    runner = types.SimpleNamespace(model=wrapper)
    del wrapper
    end_distributed(runner)
    assert not torch_dist.is_initialized()
    assert runner.model is model and freed() is None
    end_distributed(runner)  # single-process: nothing to do
