# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .prediction_layers import (PREDICTION_LAYERS, PredictionLayers,
                                PredictionSite, find_prediction_layers,
                                search_prediction_layers)
from .refinement import PredictionRefinementMixin, attach_prediction_refinement
from .yolor_head import YOLORHeadMixin, build_yolor_head, head_num_levels

__all__ = [
    'build_yolor_head', 'YOLORHeadMixin', 'PREDICTION_LAYERS',
    'PredictionLayers', 'PredictionSite', 'find_prediction_layers',
    'search_prediction_layers', 'PredictionRefinementMixin',
    'attach_prediction_refinement', 'head_num_levels'
]
