# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .yolor_neck import (NECK_OUTPUT_CONVS, FeatureAlignmentMixin,
                         OutputConvAlignmentMixin, YOLORNeck)

__all__ = [
    'YOLORNeck', 'FeatureAlignmentMixin', 'OutputConvAlignmentMixin',
    'NECK_OUTPUT_CONVS'
]
