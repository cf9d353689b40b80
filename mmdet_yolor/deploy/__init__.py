# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .fuse import (FoldReport, fold_and_strip, fold_implicit, fuse_implicit,
                   strip_folded)
from .fused_checkpoint import fuse_checkpoint, load_trained

__all__ = [
    'fuse_implicit', 'fold_implicit', 'strip_folded', 'fold_and_strip',
    'FoldReport', 'fuse_checkpoint', 'load_trained'
]
