# Copyright (c) mmdet_yolor contributors. All rights reserved.
from .shapes import (CLASSES, PALETTE, dataset_params, ensure_dataset,
                     generate_dataset, metainfo, render_image)
from .shapes_dataset import ShapesDataset

__all__ = [
    'CLASSES', 'PALETTE', 'metainfo', 'dataset_params', 'render_image',
    'generate_dataset', 'ensure_dataset', 'ShapesDataset'
]
