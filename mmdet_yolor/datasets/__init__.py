# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Datasets of mmdet_yolor: the synthetic shapes generator.

The names are loaded from :mod:`.shapes` on first access rather than at
import, so that ``python -m mmdet_yolor.datasets.shapes`` does not find the
module already imported by its package (runpy warns about that).
"""
__all__ = [
    'CLASSES', 'PALETTE', 'metainfo', 'dataset_params', 'render_image',
    'generate_dataset', 'ensure_dataset'
]


def __getattr__(name):
    if name in __all__:
        from . import shapes
        return getattr(shapes, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
