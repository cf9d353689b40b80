# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .backbones import build_yolor_backbone
from .heads import PREDICTION_LAYERS, build_yolor_head
from .layers import ImplicitA, ImplicitC, ImplicitM
from .necks import build_yolor_neck

__all__ = [
    'ImplicitA', 'ImplicitM', 'ImplicitC', 'build_yolor_neck',
    'build_yolor_backbone', 'build_yolor_head', 'PREDICTION_LAYERS'
]
