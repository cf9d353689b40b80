# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""``ShapesDataset``: mmdet's ``CocoDataset`` over the synthetic shapes data,
generated under ``data_root`` on first use."""
from typing import Optional

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from mmengine.dist import barrier, is_main_process

from .shapes import CLASSES, PALETTE, ensure_dataset


@DATASETS.register_module()
class ShapesDataset(CocoDataset):
    """The synthetic shapes dataset (:mod:`mmdet_yolor.datasets.shapes`),
    read and evaluated exactly as COCO.

    Before loading, the data is generated under ``data_root`` unless it is
    there already with the same ``generator`` parameters. In a distributed
    run the main process generates while the others wait.

    Args:
        generator (dict, optional): Parameters of
            :func:`mmdet_yolor.datasets.shapes.dataset_params` (``num_train``,
            ``num_val``, ``image_size``, ``seed``...). Defaults to its
            defaults.
        **kwargs: Arguments of :class:`mmdet.datasets.CocoDataset`
            (``data_root`` is required).
    """

    METAINFO = dict(classes=CLASSES, palette=PALETTE)
    # the input checks skip an annotation file not generated yet
    GENERATES_ANNOTATIONS = True

    def __init__(self, *args, generator: Optional[dict] = None, **kwargs):
        data_root = kwargs.get('data_root')
        if not data_root:
            raise ValueError('ShapesDataset needs data_root, the directory '
                             'the synthetic data is generated in')
        if is_main_process():
            ensure_dataset(data_root, **(generator or {}))
        barrier()
        super().__init__(*args, **kwargs)
