# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The wheel, as a user of the package meets it: built, installed without
dependencies into a temporary target and used from a directory outside the
repository, through the ``mmdet_yolor::`` config scope and the packaged
``tools/train.py``."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
YOLOR_FCOS = 'fcos/fcos-yolor_r50-caffe_fpn_gn-head_1x_coco.py'

# A user's config on the packaged YOLOR FCOS: ResNet-18 with 8 stem channels
# from scratch, 32-channel FPN and head, two generated 64-pixel images (one
# iteration of batch 2), no validation.
USER_CONFIG = f"""
_base_ = 'mmdet_yolor::{YOLOR_FCOS}'
model = dict(
    backbone=dict(
        depth=18,
        base_channels=8,
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(neck=dict(in_channels=[8, 16, 32, 64], out_channels=32)),
    bbox_head=dict(
        head=dict(
            num_classes=6, in_channels=32, feat_channels=32,
            stacked_convs=1)))
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='ShapesDataset',
        data_root='data/shapes/',
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        generator=dict(num_train=2, num_val=1, image_size=64),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(64, 64), keep_ratio=True),
            dict(type='PackDetInputs')
        ]))
train_cfg = dict(max_epochs=1)
val_dataloader = None
val_cfg = None
val_evaluator = None
"""

# Run from outside the repository with the wheel's target on PYTHONPATH:
# what a config parsed before the plugin import gets, then where the plugin
# and its scope come from, the model of the user config and get_config.
USE_PACKAGE = f"""
import json, sys
from mmengine.config import Config
result = {{}}
try:
    Config.fromfile(sys.argv[1])
except AssertionError as error:
    result['before_import'] = str(error)
import mmdet_yolor
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.hub import get_config
from mmengine.utils import get_installed_path
register_all_modules()
model = MODELS.build(Config.fromfile(sys.argv[1]).model)
result.update(
    plugin=mmdet_yolor.__file__,
    scope_root=get_installed_path('mmdet_yolor'),
    implicits=sum('implicit' in name for name, _ in model.named_parameters()),
    hub_config=get_config('mmdet_yolor::{YOLOR_FCOS}').filename)
print(json.dumps(result))
"""


def run(args, cwd, env=None):
    """Run a command, one thread per process; fail with its output."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=dict(os.environ, OMP_NUM_THREADS='1', **(env or {})),
        capture_output=True,
        text=True)
    assert result.returncode == 0, (f'{" ".join(args)} failed:\n'
                                    f'{result.stdout}\n{result.stderr}')
    return result


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """Build the wheel from a copy of the files git would commit (building
    in the checkout would write build/ and egg-info there); return its
    path."""
    source = tmp_path_factory.mktemp('source')
    files = run([
        'git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'
    ], REPO).stdout.split('\0')
    for name in filter(None, files):
        if osp.isfile(osp.join(REPO, name)):  # not deleted in the worktree
            os.makedirs(source / osp.dirname(name), exist_ok=True)
            shutil.copy2(osp.join(REPO, name), source / name)
    dist = tmp_path_factory.mktemp('dist')
    run([
        sys.executable, '-m', 'pip', 'wheel', '--no-deps',
        '--no-build-isolation', '--no-index', '-w',
        str(dist),
        str(source)
    ], REPO)
    wheels = list(dist.glob('mmdet_yolor-*.whl'))
    assert len(wheels) == 1, wheels
    return str(wheels[0])


@pytest.fixture(scope='module')
def target(wheel, tmp_path_factory):
    """Install the wheel without dependencies into a temporary target."""
    target = tmp_path_factory.mktemp('target')
    run([
        sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
        '--target',
        str(target), wheel
    ], REPO)
    return str(target)


@pytest.fixture(scope='module')
def user_dir(target, tmp_path_factory):
    """A directory outside the repository holding the user's config."""
    user_dir = tmp_path_factory.mktemp('user')
    (user_dir / 'user_config.py').write_text(USER_CONFIG)
    return str(user_dir)


def test_wheel_ships_configs_tools_and_license(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    mim = 'mmdet_yolor/.mim/'
    assert mim + 'model-index.yml' in names
    assert mim + 'configs/' + YOLOR_FCOS in names
    assert mim + 'configs/fcos/metafile.yml' in names
    assert mim + 'tools/train.py' in names
    # the script that builds a checkout's environment is not packaged
    assert not [name for name in names if name.endswith('install_env.sh')]
    assert not [name for name in names if name.endswith('.pyc')]
    assert 'mmdet_yolor-0.1.0.dist-info/licenses/LICENSE' in names


def test_wheel_leaves_the_development_tooling_out(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    # .dev_scripts (the zoo sweep, the benchmarks, the stack matrix) and the
    # tests' helpers are not product
    assert not [
        name for name in names
        if 'yolor_dev' in name or 'dev_scripts' in name or name.endswith(
            ('testing.py', 'zoo_sweep.py', 'benchmark.py', 'test_stacks.py'))
    ]
    # the per-config check is: tools/analysis/check_config.py runs it
    assert 'mmdet_yolor/analysis/config_check/row.py' in names
    assert 'mmdet_yolor/.mim/tools/analysis/check_config.py' in names


# Imports every module of the installed package, as the tools would (not
# the dataset's __main__, which writes the dataset).
IMPORT_ALL = """
import pkgutil, sys, mmdet_yolor
names = [m.name for m in pkgutil.walk_packages(mmdet_yolor.__path__,
                                               'mmdet_yolor.')
         if not m.name.endswith('__main__')]
for name in names:
    __import__(name)
print(len(names), 'yolor_dev' in sys.modules)
"""


def test_installed_package_and_check_config_need_no_checkout(target, user_dir):
    env = dict(PYTHONPATH=target)
    output = run([sys.executable, '-c', IMPORT_ALL], user_dir, env).stdout
    imported, dev = output.splitlines()[-1].split()
    assert int(imported) > 40 and dev == 'False'
    check = osp.join(target, 'mmdet_yolor', '.mim', 'tools', 'analysis',
                     'check_config.py')
    result = run([sys.executable, check, '--help'], user_dir, env)
    assert '--yolor' in result.stdout


def test_scope_and_model_from_the_installed_wheel(target, user_dir):
    result = run([sys.executable, '-c', USE_PACKAGE, 'user_config.py'],
                 user_dir,
                 env=dict(PYTHONPATH=target))
    found = json.loads(result.stdout.strip().splitlines()[-1])
    # the documented limitation: before the import, mmengine refuses
    assert found['before_import'] == (
        'mmengine does not support to load mmdet_yolor config.')
    package = osp.join(target, 'mmdet_yolor')
    assert found['plugin'] == osp.join(package, '__init__.py')
    assert found['scope_root'] == package
    assert found['implicits'] > 0
    assert found['hub_config'] == osp.join(package, '.mim', 'configs',
                                           YOLOR_FCOS)


def test_train_one_iteration_with_the_packaged_tool(target, user_dir):
    train = osp.join(target, 'mmdet_yolor', '.mim', 'tools', 'train.py')
    result = run(
        [sys.executable, train, 'user_config.py', '--work-dir', 'work'],
        user_dir,
        env=dict(PYTHONPATH=target))
    assert 'Epoch(train) [1][1/1]' in result.stdout + result.stderr
    assert osp.isfile(osp.join(user_dir, 'work', 'epoch_1.pth'))
