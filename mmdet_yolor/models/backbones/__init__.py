# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .yolor_backbone import build_yolor_backbone

__all__ = ['build_yolor_backbone']
