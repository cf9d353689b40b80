# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .levels import LevelCursor, LevelOwnerMixin, head_num_levels
from .prediction_layers import (PREDICTION_LAYERS, PredictionLayers,
                                PredictionSite, find_prediction_layers,
                                search_prediction_layers)
from .refinement import PredictionRefinementMixin, attach_prediction_refinement
from .yolor_head import YOLORHead

__all__ = [
    'YOLORHead', 'PREDICTION_LAYERS', 'PredictionLayers', 'PredictionSite',
    'find_prediction_layers', 'search_prediction_layers',
    'PredictionRefinementMixin', 'attach_prediction_refinement',
    'head_num_levels', 'LevelCursor', 'LevelOwnerMixin'
]
