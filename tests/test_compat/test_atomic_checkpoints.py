# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``atomic_checkpoints``: checkpoints are written atomically."""
import os
import pickle
import stat

import pytest
import torch
from mmengine.fileio import LocalBackend

from mmdet_yolor.compat import applied_fixes, atomic_checkpoints
from mmdet_yolor.compat.atomic_checkpoints import stock_backend_writes_in_place


def test_the_probe_finds_in_place_writes():
    assert stock_backend_writes_in_place()  # mmengine 0.10.7's defect
    assert 'atomic_checkpoints' in applied_fixes()


def test_the_backend_looks_like_the_one_it_replaces():
    backend = atomic_checkpoints.LocalBackend()
    assert backend.name == LocalBackend().name == 'LocalBackend'
    assert isinstance(backend, LocalBackend)
    # what pickles by name still does (dataloader workers that spawn)
    restored = pickle.loads(pickle.dumps(backend))
    assert type(restored) is atomic_checkpoints.LocalBackend


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), str(path))
    before = path.read_bytes()

    # a kill while the new bytes are written leaves the old file intact
    def interrupted_write(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic_checkpoints.os, 'fsync', interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(state_dict=dict(w=torch.zeros(3))), str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']


def test_atomic_writes_honour_the_umask(tmp_path):
    backend = atomic_checkpoints.LocalBackend()
    old = os.umask(0o022)
    try:
        backend.put(b'x', tmp_path / 'shared.pth')
        os.umask(0o077)
        backend.put_text('y', tmp_path / 'private.txt')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'shared.pth').st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / 'private.txt').st_mode) == 0o600
    # a replaced file keeps its permissions, as open(path, 'wb') keeps them
    os.chmod(tmp_path / 'shared.pth', 0o640)
    backend.put(b'z', tmp_path / 'shared.pth')
    assert stat.S_IMODE(os.stat(tmp_path / 'shared.pth').st_mode) == 0o640
    assert (tmp_path / 'shared.pth').read_bytes() == b'z'


def test_atomic_writes_go_through_symlinks(tmp_path):
    (tmp_path / 'real.pth').write_bytes(b'old')
    os.symlink('real.pth', tmp_path / 'latest.pth')
    atomic_checkpoints.LocalBackend().put(b'new', tmp_path / 'latest.pth')
    assert (tmp_path / 'latest.pth').is_symlink()
    assert (tmp_path / 'real.pth').read_bytes() == b'new'


def test_other_backends_and_file_operations_are_stock(tmp_path):
    from mmengine.fileio import HTTPBackend, PetrelBackend
    from mmengine.fileio.backends import registry_utils
    assert registry_utils.backends['http'] is HTTPBackend
    assert registry_utils.backends['petrel'] is PetrelBackend
    assert registry_utils.prefix_to_backends['https'] is HTTPBackend
    assert registry_utils.prefix_to_backends['s3'] is PetrelBackend
    assert registry_utils.backends['local'] is atomic_checkpoints.LocalBackend
    # everything but writing is mmengine's LocalBackend
    overridden = {
        name
        for name, value in vars(atomic_checkpoints.LocalBackend).items()
        if callable(value) or isinstance(value, staticmethod)
    }
    assert overridden == {'put', 'put_text', '_write_atomically'}
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'f.txt').write_text('hello')
    stock, atomic = LocalBackend(), atomic_checkpoints.LocalBackend()
    for backend in (stock, atomic):
        assert backend.get_text(tmp_path / 'a' / 'f.txt') == 'hello'
        assert backend.exists(tmp_path / 'a') and backend.isdir(tmp_path / 'a')
        assert sorted(backend.list_dir_or_file(tmp_path, recursive=True)) \
            == ['a', 'a/f.txt']
    # what either writes reads back the same
    stock.put_text('same', tmp_path / 'stock.txt')
    atomic.put_text('same', tmp_path / 'atomic.txt')
    assert (tmp_path / 'stock.txt').read_bytes() == \
        (tmp_path / 'atomic.txt').read_bytes()
