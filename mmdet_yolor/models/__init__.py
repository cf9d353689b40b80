# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .backbones import YOLORBackbone
from .foldable import FoldSite, ImplicitSite
from .heads import PREDICTION_LAYERS, YOLORHead
from .introspection import (alignment_targets, implicit_layers, implicit_sites,
                            refined_layers)
from .layers import ImplicitA, ImplicitC, ImplicitM
from .necks import YOLORNeck
from .wrapping import wrapped_type

__all__ = [
    'ImplicitA', 'ImplicitM', 'ImplicitC', 'YOLORNeck', 'YOLORBackbone',
    'YOLORHead', 'PREDICTION_LAYERS', 'implicit_sites', 'implicit_layers',
    'alignment_targets', 'refined_layers', 'ImplicitSite', 'FoldSite',
    'wrapped_type'
]
