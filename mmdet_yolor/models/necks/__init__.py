# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .yolor_neck import build_yolor_neck

__all__ = ['build_yolor_neck']
