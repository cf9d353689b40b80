# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .export import fuse_checkpoint
from .fuse import (FoldReport, fold_implicit, fuse_implicit,
                   prepare_for_deployment, strip_folded)

__all__ = [
    'fuse_implicit', 'fold_implicit', 'strip_folded', 'FoldReport',
    'fuse_checkpoint', 'prepare_for_deployment'
]
