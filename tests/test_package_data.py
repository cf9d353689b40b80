# Copyright (c) mmdet_yolor contributors. All rights reserved.
import glob
import os.path as osp

import pytest
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.fileio import load
from mmengine.hub import get_config

from mmdet_yolor import package_data
from mmdet_yolor.package_data import (CONFIGS_ROOT, MIM_ROOT, SEED_CONFIGS,
                                      config_path, register_config_scope,
                                      tool_path)


def metafile_models():
    """The ``Models`` of every metafile that model-index.yml imports."""
    models = []
    for metafile in load(osp.join(MIM_ROOT, 'model-index.yml'))['Import']:
        models += load(osp.join(MIM_ROOT, metafile))['Models']
    return models


def test_paths_point_into_the_package():
    assert config_path(SEED_CONFIGS[0][1]) == osp.join(CONFIGS_ROOT,
                                                       SEED_CONFIGS[0][1])
    assert osp.isfile(tool_path('train.py'))
    assert osp.isfile(tool_path('analysis/compare.py'))


def test_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match='fcos/nope.py is not in'):
        config_path('fcos/nope.py')


def test_missing_mim_dir_says_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(package_data, 'TOOLS_ROOT', str(tmp_path / 'tools'))
    with pytest.raises(FileNotFoundError, match='Reinstall it'):
        tool_path('train.py')


def test_scope_is_registered_once():
    # importing the plugin (conftest) registered it
    assert MODULE2PACKAGE['mmdet_yolor'] == 'mmdet_yolor'
    before = dict(MODULE2PACKAGE)
    register_config_scope()
    assert MODULE2PACKAGE == before


def test_model_index_lists_every_algorithm_config():
    configs = {model['Config'] for model in metafile_models()}
    shipped = {
        osp.relpath(path, MIM_ROOT)
        for path in glob.glob(osp.join(CONFIGS_ROOT, '*', '*.py'))
        if '/demo/' not in path
    }
    assert configs == shipped
    seed = {'configs/' + path for pair in SEED_CONFIGS for path in pair}
    assert seed == shipped


def test_every_indexed_config_loads_through_the_scope():
    for model in metafile_models():
        relative = osp.relpath(model['Config'], 'configs')
        cfg = get_config(f'mmdet_yolor::{relative}')
        assert cfg.filename == config_path(relative)
        assert model['Results'][0]['Metrics']['box AP'] > 0
