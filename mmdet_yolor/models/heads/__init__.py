# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .yolor_head import (PREDICTION_LAYERS, PredictionLayers, build_yolor_head,
                         find_prediction_layers)

__all__ = [
    'build_yolor_head', 'PREDICTION_LAYERS', 'PredictionLayers',
    'find_prediction_layers'
]
