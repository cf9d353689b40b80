# Copyright (c) mmdet_yolor contributors. All rights reserved.
import os.path as osp

import pytest

from mmdet_yolor.errors import InputError
from yolor_dev.zoo_sweep import configs
from yolor_dev.zoo_sweep.configs import (DEFAULT_CONFIGS,
                                         NOT_ALGORITHM_FOLDERS, ConfigSpec)


def test_default_configs():
    assert configs.default_config('cascade_rpn').startswith(
        'cascade-rpn_faster-rcnn')
    specs = configs.list_configs(['retinanet', 'yolox'])
    assert [spec.folder for spec in specs] == ['retinanet', 'yolox']
    assert specs[0].path.endswith(
        'configs/retinanet/retinanet_r18_fpn_1x_coco.py')
    assert len(configs.list_configs(['yolox'], all_configs=True)) > 1
    with pytest.raises(InputError, match='not an algorithm folder.*_base_'):
        configs.list_configs(['_base_'])


def test_algorithm_folders_leave_out_folders_without_an_algorithm():
    folders = configs.algorithm_folders()
    assert folders == sorted(folders)
    assert {'retinanet', 'faster_rcnn', 'detr'} <= set(folders)
    assert not set(NOT_ALGORITHM_FOLDERS) & set(folders)


def test_default_config_is_the_first_model_of_the_metafile():
    # retinanet's metafile lists R-18 first, not the name order's R-101
    assert configs.folder_configs('retinanet')[0].startswith('retinanet_r101')
    assert configs.default_config('retinanet') == \
        'retinanet_r18_fpn_1x_coco.py'
    # an entry of DEFAULT_CONFIGS wins, and names a config that exists
    for folder, name in DEFAULT_CONFIGS.items():
        assert configs.default_config(folder) == name
        assert name in configs.folder_configs(folder), folder


def test_config_spec_path_is_in_the_installed_mmdet():
    spec = ConfigSpec('fcos', 'fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    assert spec.path == osp.join(configs.mmdet_config_dir(), 'fcos', spec.name)
    assert osp.isfile(spec.path)
