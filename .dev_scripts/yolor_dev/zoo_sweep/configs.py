# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Which configs of the installed mmdet the sweep runs: its algorithm
folders and the default config of each."""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

import mmdet
from mmengine.fileio import load

from mmdet_yolor.errors import InputError

# Folders of mmdet/.mim/configs holding no algorithm of their own.
NOT_ALGORITHM_FOLDERS = {
    '_base_': 'base configs that the algorithm configs inherit',
    'common': 'dataset and schedule settings only',
    'misc': 'Detectron2 checkpoint-conversion configs',
    'legacy_1.x': 'mmdet 1.x checkpoint-compatibility configs',
}

# The default config of a folder is the first model of its metafile.yml
# (mmdet's canonical model of the folder), except where that model misses
# the folder's point or is much heavier than a sibling with the same heads.
DEFAULT_CONFIGS = {
    # the metafile's first is a Fast R-CNN reading precomputed proposals:
    # no Cascade RPN head in the model
    'cascade_rpn': 'cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py',
    # the metafile's (or the name order's) first is the neckless C4 variant,
    # whose RoI head runs ResNet's last stage on every RoI; the FPN one is
    # the usual baseline
    'faster_rcnn': 'faster-rcnn_r50_fpn_1x_coco.py',
    'pascal_voc': 'faster-rcnn_r50_fpn_1x_voc0712.py',
    # no metafile; R-50 rather than the name order's first, R-101
    'fast_rcnn': 'fast-rcnn_r50_fpn_1x_coco.py',
    # the same heads on R-50 instead of Swin-S / R-101
    'mask2former': 'mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
    'tood': 'tood_r50_fpn_1x_coco.py',
    # no metafile; the name order's first, a Cascade R-CNN over V3Det's
    # 13,204 classes, predicts for tens of minutes on CPU
    'v3det': 'faster_rcnn_r50_fpn_8x4_sample1e-3_mstrain_v3det_2x.py',
}


@dataclass
class ConfigSpec:
    """One config of the installed mmdet's zoo."""
    folder: str
    name: str

    @property
    def path(self) -> str:
        """The config file. (``mmengine.hub.get_config`` reads the same file
        from ``mmdet::<folder>/<name>``, but refuses the ``+`` of
        ``gn+ws``.)"""
        return osp.join(mmdet_config_dir(), self.folder, self.name)


def mmdet_config_dir() -> str:
    """The installed mmdet's config folder (``mmdet/.mim/configs``)."""
    return osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs')


def algorithm_folders() -> List[str]:
    """The folders of mmdet's configs that hold an algorithm, sorted."""
    root = mmdet_config_dir()
    return sorted(
        name for name in os.listdir(root) if osp.isdir(osp.join(root, name))
        and name not in NOT_ALGORITHM_FOLDERS and folder_configs(name))


def folder_configs(folder: str) -> List[str]:
    """The config file names of ``folder``, sorted."""
    path = osp.join(mmdet_config_dir(), folder)
    return sorted(name for name in os.listdir(path) if name.endswith('.py'))


def default_config(folder: str) -> str:
    """The config a default sweep runs for ``folder``: its entry in
    :data:`DEFAULT_CONFIGS`, else the first model of its ``metafile.yml``
    that exists in the folder, else its first config by name."""
    names = folder_configs(folder)
    if folder in DEFAULT_CONFIGS:
        return DEFAULT_CONFIGS[folder]
    metafile = osp.join(mmdet_config_dir(), folder, 'metafile.yml')
    if osp.isfile(metafile):
        models = load(metafile)
        models = models.get('Models', []) if isinstance(models,
                                                        dict) else models
        for model in models:
            name = osp.basename(model.get('Config', ''))
            if name in names:
                return name
    return names[0]


def list_configs(folders: Optional[Sequence[str]] = None,
                 all_configs: bool = False) -> List[ConfigSpec]:
    """The configs to sweep.

    Args:
        folders (Sequence[str], optional): Algorithm folders to sweep.
            Defaults to all of them (:func:`algorithm_folders`).
        all_configs (bool): Every config of each folder instead of its
            :func:`default_config`. Defaults to False.

    Raises:
        InputError: If a folder is not an algorithm folder of mmdet's
            configs.
    """
    known = algorithm_folders()
    folders = list(folders or known)
    unknown = [folder for folder in folders if folder not in known]
    if unknown:
        raise InputError(
            f'not an algorithm folder of {mmdet_config_dir()}: '
            f'{", ".join(unknown)}; choose among {", ".join(known)}')
    specs = []
    for folder in folders:
        names = (
            folder_configs(folder)
            if all_configs else [default_config(folder)])
        specs.extend(ConfigSpec(folder, name) for name in names)
    return specs
