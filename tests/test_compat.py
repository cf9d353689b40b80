# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy
import copyreg
import pickle
import pickletools

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet_yolor import compat


def message_hub_checkpoint(path):
    hub = MessageHub('compat-test')
    for value in (1.0, 2.0, 4.0):
        hub.update_scalar('train/loss', value)
    hub.update_info('eta', np.float64(3.5))
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), message_hub=hub.state_dict()),
        path)


def test_history_buffer_pickles_without_getattr():
    buffer = HistoryBuffer([1.0, 2.0], [1, 1], max_length=5)
    # the protocol torch.save uses
    data = pickle.dumps(buffer, protocol=torch.serialization.DEFAULT_PROTOCOL)
    assert not [
        arg for op, arg, _ in pickletools.genops(data) if 'getattr' in str(arg)
    ]
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored.mean() == 1.5 and restored.max_length == 5
    assert copy.deepcopy(buffer).current() == 2.0


def test_resume_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    message_hub_checkpoint(path)
    # the stock torch.load of torch >= 2.6 refuses HistoryBuffer
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    checkpoint = CheckpointLoader.load_checkpoint(path)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == pytest.approx(7 / 3)
    assert checkpoint['message_hub']['runtime_info']['eta'] == 3.5


def test_checkpoint_with_unsafe_objects_needs_explicit_trust(
        tmp_path, monkeypatch):
    path = str(tmp_path / 'foreign.pth')
    # as written without mmdet_yolor imported: HistoryBuffer pickled via
    # getattr
    reducer = copyreg.dispatch_table.pop(HistoryBuffer)
    try:
        message_hub_checkpoint(path)
    finally:
        copyreg.pickle(HistoryBuffer, reducer)
    with pytest.raises(
            compat.CheckpointError, match='MMDET_YOLOR_TRUST_CHECKPOINTS=1'):
        CheckpointLoader.load_checkpoint(path)
    monkeypatch.setenv(compat.TRUST_CHECKPOINTS_ENV, '1')
    checkpoint = CheckpointLoader.load_checkpoint(path)
    assert 'train/loss' in checkpoint['message_hub']['log_scalars']


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        compat.load_local_checkpoint(str(tmp_path / 'nope.pth'))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(100))), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(
            compat.CheckpointError,
            match='truncated.pth is not a readable '
            r'checkpoint \(corrupt or truncated\?\)'):
        compat.load_local_checkpoint(str(truncated))


def test_setup_distributed_does_nothing_single_process():
    cfg = Config(dict(launcher='none'))
    compat.setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_uses_gloo_without_cuda(monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29533')
    cfg = Config(
        dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    try:
        compat.setup_distributed(cfg)
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_refuses_slurm_without_cuda():
    with pytest.raises(
            RuntimeError,
            match='--launcher slurm needs CUDA '
            'devices.*tools/dist_train.sh'):
        compat.setup_distributed(Config(dict(launcher='slurm')))


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), str(path))
    before = path.read_bytes()

    # a kill while the new bytes are written leaves the old file intact
    def interrupted_write(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(compat.os, 'fsync', interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(state_dict=dict(w=torch.zeros(3))), str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']
