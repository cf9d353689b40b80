# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .alignment import FeatureAlignmentMixin, OutputConvAlignmentMixin
from .fpn_folding import NECK_OUTPUT_CONVS
from .yolor_neck import YOLORNeck

__all__ = [
    'YOLORNeck', 'FeatureAlignmentMixin', 'OutputConvAlignmentMixin',
    'NECK_OUTPUT_CONVS'
]
