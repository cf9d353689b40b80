# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``atomic_checkpoints``: a job killed while saving keeps the previous
checkpoint.

mmengine writes checkpoints with ``open(path, 'wb').write``, so a job killed
while saving leaves a truncated file. With the fix, local writes through
mmengine's file backend go to a temporary file in the same directory that
replaces the target only once complete, with the permissions ``open`` would
give it (the umask, or those of the file it replaces). Every other file
operation is mmengine's.
"""
import os
import stat
import tempfile
import uuid

from mmengine.fileio import LocalBackend as StockLocalBackend
from mmengine.fileio import register_backend

from .registry import Fix


def stock_backend_writes_in_place() -> bool:
    """Whether mmengine's local backend overwrites a file in place (the
    file keeps its inode) rather than replacing it once written."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, 'probe')
        with open(path, 'wb'):
            pass
        inode = os.stat(path).st_ino
        StockLocalBackend().put(b'probe', path)
        return os.stat(path).st_ino == inode


class LocalBackend(StockLocalBackend):
    """mmengine's local file backend, writing each file atomically: into a
    temporary file next to it, flushed to disk, then renamed over it. Its
    class name is mmengine's: code checks a backend's ``name``."""

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
    """Make mmengine write local files (checkpoints) atomically."""
    register_backend('local', LocalBackend, force=True, prefixes='')


FIX = Fix(
    name='atomic_checkpoints',
    defect="mmengine's local backend writes checkpoints in place, so a job "
    'killed while saving leaves a truncated file',
    probe=stock_backend_writes_in_place,
    apply=register_atomic_local_backend)
