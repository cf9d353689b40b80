# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``resume``: the checkpoint loader that allows what mmengine's
checkpoints hold, and names what it refuses."""
import copyreg
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet_yolor.compat import applied_fixes
from mmdet_yolor.compat.resume import TRUST_CHECKPOINTS_ENV, load_from_local
from mmdet_yolor.errors import CheckpointError, UnreadableCheckpointError
from mmdet_yolor.stack_api import loads_weights_only_by_default


def test_the_loader_is_registered_where_torch_loads_weights_only(tmp_path):
    loader = CheckpointLoader._get_checkpoint_loader(str(tmp_path / 'a.pth'))
    # mmengine reads the scheme it logs from the loader's name
    assert loader.__name__ == 'load_from_local'
    assert (loader is load_from_local) == loads_weights_only_by_default()
    assert ('resume' in applied_fixes()) == loads_weights_only_by_default()
    assert pickle.loads(pickle.dumps(loader)) is loader


def message_hub_checkpoint(path):
    hub = MessageHub('compat-test')
    for value in (1.0, 2.0, 4.0):
        hub.update_scalar('train/loss', value)
    hub.update_info('eta', np.float64(3.5))
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), message_hub=hub.state_dict()),
        path)


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
    if loads_weights_only_by_default():
        with pytest.raises(CheckpointError) as error:
            CheckpointLoader.load_checkpoint(path)
        message = str(error.value)
        # the one object not allowed, why it is there, and what to do
        assert ('safe to load (builtins.getattr); a checkpoint with '
                'builtins.getattr was probably written without mmdet_yolor '
                'imported. If you trust the file, set '
                'MMDET_YOLOR_TRUST_CHECKPOINTS=1 to load it.') in message
    else:  # a torch that unpickles everything by default: as stock torch
        assert 'train/loss' in CheckpointLoader.load_checkpoint(
            path)['message_hub']['log_scalars']
    monkeypatch.setenv(TRUST_CHECKPOINTS_ENV, '1')
    checkpoint = CheckpointLoader.load_checkpoint(path)
    assert 'train/loss' in checkpoint['message_hub']['log_scalars']


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        load_from_local(str(tmp_path / 'nope.pth'))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(100))), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    not_a_checkpoint = tmp_path / 'notes.pth'
    not_a_checkpoint.write_text('not a checkpoint')
    for path in (truncated, not_a_checkpoint):
        with pytest.raises(UnreadableCheckpointError) as error:
            load_from_local(str(path))
        message = str(error.value)
        # one line: the file, what is wrong, what to do; nothing of torch's
        assert '\n' not in message
        assert message.startswith(f'checkpoint {path} is not a readable '
                                  'checkpoint (truncated or corrupt): use')
        assert 'weights_only' not in message
        # code catching what torch raises still catches it
        assert isinstance(error.value, RuntimeError)


def test_stock_checkpoints_load_as_before(tmp_path):
    # what mmengine's own loader reads: plain state dicts, and full
    # checkpoints with meta and optimizer state
    plain = tmp_path / 'plain.pth'
    torch.save(dict(w=torch.arange(3.)), plain)
    full = tmp_path / 'full.pth'
    torch.save(
        dict(
            meta=dict(epoch=3, seed=0, mmdet_version='3.3.0'),
            state_dict=dict(w=torch.ones(2)),
            optimizer=dict(state={}, param_groups=[dict(lr=0.1)])), full)
    for path in (plain, full):
        expected = torch.load(path, map_location='cpu')
        loaded = CheckpointLoader.load_checkpoint(str(path), 'cpu')
        assert str(expected) == str(loaded)
    # an object the stock loader refuses is refused the same way
    foreign = tmp_path / 'foreign.pth'
    torch.save(dict(config=Config(dict(a=1))), foreign)
    if not loads_weights_only_by_default():  # and one it loads, loaded
        config = CheckpointLoader.load_checkpoint(str(foreign))['config']
        assert config.to_dict() == dict(a=1)
        return
    with pytest.raises(pickle.UnpicklingError):
        torch.load(foreign)
    with pytest.raises(pickle.UnpicklingError, match=TRUST_CHECKPOINTS_ENV):
        CheckpointLoader.load_checkpoint(str(foreign))
