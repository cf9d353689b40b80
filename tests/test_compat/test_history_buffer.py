# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``history_buffer_pickle``: HistoryBuffers pickle without getattr."""
import copy
import pickle
import pickletools

import torch
from mmengine.logging import HistoryBuffer

from mmdet_yolor.compat import applied_fixes
from mmdet_yolor.compat.history_buffer import pickles_through_getattr


def test_the_probe_finds_the_stock_pickling(monkeypatch):
    import copyreg
    monkeypatch.delitem(copyreg.dispatch_table, HistoryBuffer, raising=False)
    assert pickles_through_getattr()  # mmengine 0.10.7 has the defect


def test_history_buffer_pickles_without_getattr():
    assert 'history_buffer_pickle' in applied_fixes()
    assert not pickles_through_getattr()
    buffer = HistoryBuffer([1.0, 2.0], [1, 1], max_length=5)
    # the protocol torch.save uses
    data = pickle.dumps(buffer, protocol=torch.serialization.DEFAULT_PROTOCOL)
    assert not [
        arg for op, arg, _ in pickletools.genops(data) if 'getattr' in str(arg)
    ]
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored.mean() == 1.5 and restored.max_length == 5
    assert copy.deepcopy(buffer).current() == 2.0
