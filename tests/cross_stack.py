# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Checkpoints that cross stacks: the config they were trained with, and
the command that wrote the ones in tests/data/cross_stack/.

Each fixture there is the ``epoch_1.pth`` of ``tools/train.py <config>
--yolor``, written on one stack of the matrix (README, "Supported stacks"):
torch 2.1 with numpy 1 and torch 2.13 with numpy 2. Its name says which.
Write one for the stack of an interpreter (about 20 s)::

    .venv-torch2.1.2/bin/python tests/cross_stack.py
    .venv/bin/python tests/cross_stack.py

The model is tiny (a ResNet-18 of 2 base channels, an 8-channel FPN and
head: about 260 KB with its optimizer state), and the checkpoint holds
everything a resume reads: the weights and implicits, SGD momentum, the
message hub's HistoryBuffers and numpy values.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile

from mmengine.config import Config

FIXTURES = osp.join(osp.dirname(osp.abspath(__file__)), 'data', 'cross_stack')
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def checkpoint_config(data_root: str,
                      work_dir: str,
                      max_epochs: int = 1) -> Config:
    """The tiny FCOS config (YOLOR comes from ``--yolor``) of the
    fixtures: two training images of 32 px, one iteration an epoch, every
    detection kept (so that even an untrained model has a box mAP)."""
    from yolor_testing import shrink_backbone, tiny_fcos_config
    cfg = tiny_fcos_config(
        data_root,
        work_dir,
        max_epochs=max_epochs,
        num_train=2,
        num_val=2,
        image_size=32)
    shrink_backbone(cfg.model, base_channels=2)
    cfg.model.backbone.norm_cfg = dict(type='BN', requires_grad=True)
    cfg.model.neck.out_channels = 8
    cfg.model.bbox_head.update(
        in_channels=8,
        feat_channels=8,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True))
    cfg.model.test_cfg.score_thr = 0.0
    return cfg


def fixture_name() -> str:
    """The fixture name for this interpreter's stack."""
    import numpy
    import torch
    torch_version = torch.__version__.split('+')[0]
    return f'fcos-yolor_torch-{torch_version}_numpy-{numpy.__version__}.pth'


def write_fixture() -> str:
    """Train the config one epoch with ``tools/train.py --yolor`` and copy
    its checkpoint into :data:`FIXTURES`; return the path."""
    with tempfile.TemporaryDirectory() as tmp:
        config = osp.join(tmp, 'cross_stack.py')
        checkpoint_config(osp.join(tmp, 'data'), osp.join(tmp,
                                                          'work')).dump(config)
        subprocess.run([
            sys.executable,
            osp.join(REPO, 'tools', 'train.py'), config, '--yolor'
        ],
                       cwd=tmp,
                       env=dict(os.environ, OMP_NUM_THREADS='1'),
                       check=True)
        os.makedirs(FIXTURES, exist_ok=True)
        path = osp.join(FIXTURES, fixture_name())
        shutil.copyfile(osp.join(tmp, 'work', 'epoch_1.pth'), path)
    return path


if __name__ == '__main__':
    print(write_fixture())
