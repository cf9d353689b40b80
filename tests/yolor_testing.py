# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Helpers for tests of models built with the plugin, in the spirit of
``mmdet.testing``: seconds-long configs (a tiny FCOS, shrunk zoo
detectors), implicit values that make a wrong fold show, head weights that
spread an untrained detector's detections, and stage-by-stage comparison of
two detectors."""
import os.path as osp
from typing import Dict, List, Tuple

import torch
from mmengine.config import Config
from torch import Tensor, nn

from mmdet_yolor.datasets import CLASSES
from mmdet_yolor.models.layers import BaseImplicit
from mmdet_yolor.package_data import get_config
from yolor_dev.shrinking import cap_two_stage_sampling


@torch.no_grad()
def randomise_implicits(model: nn.Module, seed: int = 0) -> None:
    """Give every implicit layer (vector form) a value far from the
    identity, so that a wrong fold shows."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, BaseImplicit):
            assert module.form == 'vector'
            module.implicit.copy_(
                module.offset +
                0.3 * torch.randn(module.channels, generator=generator))


# the layers spread_head_weights gives random weights, by module name
HEADS = ('bbox_head', 'rpn_head', 'roi_head')


@torch.no_grad()
def spread_head_weights(model: nn.Module,
                        seed: int = 0,
                        layers: Tuple[str, ...] = HEADS) -> None:
    """Untrained heads predict near-constant scores (a prior-probability
    bias) and near-empty boxes: give their convs and Linears (those whose
    names start with one of ``layers``) He-scaled random weights and small
    random biases, so that detections spread over the image with scores far
    apart. In place."""
    generator = torch.Generator().manual_seed(seed)
    for name, module in model.named_modules():
        if name.startswith(layers) and \
                isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.copy_(
                torch.randn(module.weight.shape, generator=generator) *
                (2 / fan_in)**0.5)
            if module.bias is not None:
                module.bias.copy_(
                    0.1 * torch.randn(module.bias.shape, generator=generator))


@torch.no_grad()
def spread_sparse_rcnn(model: nn.Module, seed: int = 0) -> None:
    """Sparse R-CNN's :func:`spread_head_weights`: its learned proposals
    start as the whole image, and its six stages compound random box deltas
    into boxes far outside the image (where RoIAlign's border turns float
    noise into other samples). Give the proposals random boxes inside the
    image, the classifiers He-scaled weights and the box regressors a third
    of their initial weights. In place."""
    generator = torch.Generator().manual_seed(seed)
    # cx, cy, w, h relative to the image
    proposals = model.rpn_head.init_proposal_bboxes.weight
    proposals[:, :2] = 0.2 + 0.6 * torch.rand(
        proposals[:, :2].shape, generator=generator)
    proposals[:, 2:] = 0.1 + 0.4 * torch.rand(
        proposals[:, 2:].shape, generator=generator)
    spread_head_weights(
        model,
        seed,
        layers=tuple(f'roi_head.bbox_head.{stage}.fc_cls'
                     for stage in range(len(model.roi_head.bbox_head))))
    for bbox_head in model.roi_head.bbox_head:
        bbox_head.fc_reg.weight.mul_(1 / 3)


def assert_close_stages(expected: Dict[str, List[Tensor]],
                        actual: Dict[str, List[Tensor]],
                        rtol: float = 1e-4) -> None:
    """Assert that two :func:`~mmdet_yolor.analysis.stages.stage_outputs`
    agree within ``rtol`` of each tensor's largest value, stage by
    stage."""
    assert expected.keys() == actual.keys()
    for stage in expected:
        assert len(expected[stage]) == len(actual[stage]) > 0, stage
        for e, a in zip(expected[stage], actual[stage]):
            torch.testing.assert_close(
                a, e, rtol=rtol, atol=rtol * e.abs().max(), msg=stage)


def shrink_backbone(model_cfg: dict, base_channels: int = 16) -> dict:
    """Turn the ResNet-50 of a detector config into a ResNet-18 with
    ``base_channels`` stem channels, initialised from scratch, and fit the
    neck's ``in_channels``; heads keep their widths. In place; returns
    ``model_cfg``."""
    model_cfg.backbone.update(
        depth=18, base_channels=base_channels, init_cfg=None)
    neck = model_cfg.neck
    if neck.get('type') == 'YOLORNeck':
        neck = neck.neck
    neck.in_channels = [base_channels * 2**i for i in range(4)]
    return model_cfg


def shrink_zoo_config(cfg: Config) -> Config:
    """Make a config of mmdet's zoo train in seconds: its ResNet-50 becomes
    a ResNet-18 (whatever reads the backbone, the neck or a neckless
    head, reads a quarter of the channels), its transformers keep two
    layers and two-stage detectors sample 64 RoIs per image from 100
    proposals (RoIAlign is slow on CPU). In place; returns ``cfg``."""
    model = cfg.model
    cap_two_stage_sampling(model)
    backbone = model.backbone
    if backbone.type == 'ResNet' and backbone.depth == 50:
        backbone.depth = 18
        reader = model.get('neck') or model.get('panoptic_head')
        if isinstance(reader, list):  # a neck list reads through its first
            reader = reader[0]
        reader.in_channels = [channels // 4 for channels in reader.in_channels]
    for part in ('encoder', 'decoder'):
        if part in model:
            model[part].num_layers = 2
    if 'panoptic_head' in model and 'transformer_decoder' in \
            model.panoptic_head:
        model.panoptic_head.pixel_decoder.encoder.num_layers = 2
        model.panoptic_head.transformer_decoder.num_layers = 2
    return cfg


def tiny_fcos_config(data_root: str,
                     work_dir: str,
                     max_epochs: int = 1,
                     num_train: int = 8,
                     num_val: int = 4,
                     image_size: int = 64,
                     batch_size: int = 2,
                     flip: bool = False,
                     norm: str = 'BN',
                     dataset_type: str = 'ShapesDataset') -> Config:
    """A seconds-long FCOS training config on a tiny synthetic shapes set.

    ResNet-18 with 8 stem channels from scratch, 32-channel FPN and head,
    ``num_train`` training images of ``image_size`` pixels, a batch of
    ``batch_size``, evaluation and a checkpoint after every epoch.
    ``flip`` adds random horizontal flips (random numbers in the data
    pipeline), ``norm='GN'`` makes the backbone independent of the batch
    size, ``dataset_type='CocoDataset'`` reads data generated beforehand
    (:func:`mmdet_yolor.datasets.ensure_dataset`) as plain COCO.
    """
    cfg = get_config('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    model = cfg.model
    model.data_preprocessor.update(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    shrink_backbone(model, base_channels=8)
    norm_cfg = dict(
        type='BN', requires_grad=True) if norm == 'BN' else dict(
            type='GN', num_groups=8, requires_grad=True)
    model.backbone.update(norm_cfg=norm_cfg, norm_eval=False, frozen_stages=-1)
    model.neck.out_channels = 32
    model.bbox_head.update(
        num_classes=6, in_channels=32, feat_channels=32, stacked_convs=1)
    generator = dict(
        num_train=num_train, num_val=num_val, image_size=image_size, seed=0)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
        dict(type='PackDetInputs')
    ]
    train_pipeline = pipeline[:-1] + [dict(type='RandomFlip', prob=0.5)
                                      ] * flip + pipeline[-1:]
    if dataset_type == 'ShapesDataset':
        dataset_args = dict(generator=generator)
    else:
        dataset_args = dict(metainfo=dict(classes=CLASSES))
    for split, loader in (('train', cfg.train_dataloader),
                          ('val', cfg.val_dataloader)):
        loader.update(
            batch_size=batch_size, num_workers=0, persistent_workers=False)
        loader.dataset = dict(
            type=dataset_type,
            data_root=data_root,
            ann_file=f'annotations/instances_{split}.json',
            data_prefix=dict(img=f'{split}/'),
            test_mode=split == 'val',
            pipeline=train_pipeline if split == 'train' else pipeline,
            **dataset_args)
    cfg.train_dataloader.batch_sampler = None
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator = dict(
        type='CocoMetric',
        ann_file=osp.join(data_root, 'annotations/instances_val.json'),
        metric='bbox')
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(
        type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
    cfg.optim_wrapper.optimizer = dict(
        type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4)
    cfg.param_scheduler = []
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = work_dir
    return cfg


# The detectors of the paper's MMDetection tables, by their mmdet R-50 1x
# configs.
SEED_DETECTORS = {
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    'sparse_rcnn': 'sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py',
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
}
