# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``history_buffer_pickle``: checkpoints that a weights-only
``torch.load`` can read.

mmengine 0.10.7's ``HistoryBuffer`` (the message hub's logs, in every
resume checkpoint) pickles its ``__dict__`` through ``builtins.getattr``,
which no weights-only load allows (torch >= 2.6 loads so by default). The
fix pickles it as ``HistoryBuffer(log, count, max_length)``, which stock
mmengine reads too, so a checkpoint written on any stack resumes on one that
loads weights-only (fix ``resume``).
"""
import copyreg
import pickle
import pickletools

from mmengine.logging import HistoryBuffer

from .registry import Fix


def pickles_through_getattr() -> bool:
    """Whether a ``HistoryBuffer``'s pickle calls ``builtins.getattr``."""
    data = pickle.dumps(HistoryBuffer(), protocol=2)
    return any(arg is not None and 'getattr' in str(arg)
               for _, arg, _ in pickletools.genops(data))


def _reduce_history_buffer(buffer: HistoryBuffer) -> tuple:
    return HistoryBuffer, (*buffer.data, buffer.max_length)


def pickle_from_arrays() -> None:
    """Pickle HistoryBuffers from their arrays alone."""
    copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


FIX = Fix(
    name='history_buffer_pickle',
    defect="mmengine's HistoryBuffer pickles through builtins.getattr, "
    'which weights-only loads refuse',
    probe=pickles_through_getattr,
    apply=pickle_from_arrays)
