# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``multi_apply``: dense heads compile whole where dynamo cannot trace
``map`` over several iterables."""
import torch

from mmdet_yolor.compat import applied_fixes
from mmdet_yolor.compat.multi_apply import dynamo_breaks_at_map
from yolor_dev.compiling import count_compilation


def test_multi_apply_runs_levels_as_stock_and_compiles_whole():
    from mmdet.models.utils import multi_apply
    from mmdet.models.utils.misc import multi_apply as misc_multi_apply
    assert multi_apply is misc_multi_apply  # the same function, patched
    assert multi_apply.__name__ == 'multi_apply'
    # applied where dynamo breaks at map(), stock elsewhere
    assert ('multi_apply' in applied_fixes()) == dynamo_breaks_at_map()

    def level(x, scale, offset=0):
        return x * scale + offset, scale

    features = [torch.ones(2) * i for i in range(3)]
    scales = [1.0, 2.0, 3.0]
    outputs, used = multi_apply(level, features, scales, offset=1)
    assert used == scales
    assert [o.tolist() for o in outputs] == [[1, 1], [3, 3], [7, 7]]
    # stock multi_apply's map() over two iterables broke the graph on torch
    # < 2.3; over zip every torch captures it whole
    counts = count_compilation(lambda *xs: multi_apply(level, xs, scales)[0],
                               *features)
    assert (counts.frames, counts.graph_breaks, counts.recompiles) == (1, 0, 0)
