# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .yolor_backbone import YOLORBackbone

__all__ = ['YOLORBackbone']
