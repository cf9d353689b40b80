# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The configs and tools shipped inside the package, and the
``mmdet_yolor::`` config scope.

As OpenMMLab packages do, the repository's ``configs/``, ``tools/`` and
``model-index.yml`` are installed as ``mmdet_yolor/.mim/`` (links in an
editable install, copies in a wheel; see ``setup.py``). This module is the one
place that finds them, so code that runs from a wheel never looks for a
source checkout.

It imports nothing from the OpenMMLab stack at module level: the package
imports it before :func:`mmdet_yolor.version.check_versions` has run.
"""
import os.path as osp

PACKAGE = 'mmdet_yolor'
MIM_ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '.mim')
CONFIGS_ROOT = osp.join(MIM_ROOT, 'configs')
TOOLS_ROOT = osp.join(MIM_ROOT, 'tools')

# Every seed-table row: (baseline config, YOLOR config) under configs/.
SEED_CONFIGS = [
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
     'faster_rcnn/faster-rcnn-yolor_r50_fpn_1x_coco.py'),
    ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
     'mask_rcnn/mask-rcnn-yolor_r50_fpn_1x_coco.py'),
    ('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py',
     'sparse_rcnn/sparse-rcnn-yolor_r50_fpn_1x_coco.py'),
    ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
     'fcos/fcos-yolor_r50-caffe_fpn_gn-head_1x_coco.py'),
    ('atss/atss_r50_fpn_1x_coco.py', 'atss/atss-yolor_r50_fpn_1x_coco.py'),
    ('sparse_rcnn/sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco'
     '.py', 'sparse_rcnn/sparse-rcnn-yolor_r50_fpn_300-proposals_'
     'crop-ms-480-800-3x_coco.py'),
]


def _packaged(root: str, relative_path: str) -> str:
    """Return ``root/relative_path``; raise if the file is not there."""
    path = osp.join(root, relative_path)
    if osp.isfile(path):
        return path
    if not osp.isdir(root):
        raise FileNotFoundError(
            f'{root} is missing: this {PACKAGE} install has no packaged '
            'configs and tools. Reinstall it (`make install` in a source '
            'checkout, or `pip install` of its wheel).')
    raise FileNotFoundError(f'{relative_path} is not in {root}.')


def config_path(relative_path: str) -> str:
    """Path of a packaged config, e.g.
    ``config_path('fcos/fcos-yolor_r50-caffe_fpn_gn-head_1x_coco.py')``."""
    return _packaged(CONFIGS_ROOT, relative_path)


def tool_path(relative_path: str) -> str:
    """Path of a packaged tool, e.g. ``tool_path('train.py')`` or
    ``tool_path('analysis/compare.py')``."""
    return _packaged(TOOLS_ROOT, relative_path)


def get_config(relative_path: str):
    """Load a packaged config (``configs/<relative_path>`` of the
    repository) as a :class:`mmengine.config.Config`."""
    from mmengine.config import Config
    return Config.fromfile(config_path(relative_path))


def register_config_scope() -> None:
    """Let mmengine resolve ``mmdet_yolor::`` config paths.

    mmengine resolves ``_base_ = 'pkg::path'`` and
    ``mmengine.hub.get_config('pkg::path')`` only for the packages in its
    ``MODULE2PACKAGE`` table; this adds ``mmdet_yolor`` to it (idempotent).
    Importing :mod:`mmdet_yolor` calls it, so a config parsed before the
    plugin is imported cannot use the scope.
    """
    from mmengine.config.utils import MODULE2PACKAGE
    MODULE2PACKAGE.setdefault(PACKAGE, PACKAGE)
