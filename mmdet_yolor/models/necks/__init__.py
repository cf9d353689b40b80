# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .yolor_neck import (NECK_OUTPUT_CONVS, FeatureAlignmentMixin,
                         OutputConvAlignmentMixin, build_yolor_neck)

__all__ = [
    'build_yolor_neck', 'FeatureAlignmentMixin', 'OutputConvAlignmentMixin',
    'NECK_OUTPUT_CONVS'
]
