# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Helpers for tests and quick runs, in the spirit of ``mmdet.testing``."""
import copy
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import torch
from mmdet.models.dense_heads import EmbeddingRPNHead
from mmengine.config import Config
from torch import Tensor, nn
from torch.utils._pytree import tree_leaves

from .datasets import CLASSES
# CONFIGS_ROOT and SEED_CONFIGS are re-exported for the tests.
from .package_data import CONFIGS_ROOT, SEED_CONFIGS, get_config  # noqa


def remove_pretrained_weights(model_cfg: dict) -> dict:
    """Drop every pretrained-weight reference of a model config (none can be
    downloaded here): ``init_cfg`` of type ``Pretrained`` and
    ``pretrained=...``. In place; returns ``model_cfg``."""
    nodes = [model_cfg]
    while nodes:
        node = nodes.pop()
        if isinstance(node, dict):
            init_cfg = node.get('init_cfg')
            if isinstance(init_cfg, dict) and \
                    init_cfg.get('type') == 'Pretrained':
                node['init_cfg'] = None
            if node.get('pretrained'):
                node['pretrained'] = None
            nodes.extend(node.values())
        elif isinstance(node, (list, tuple)):
            nodes.extend(node)
    return model_cfg


@torch.no_grad()
def randomise_implicits(model: nn.Module, seed: int = 0) -> None:
    """Give every implicit layer (vector form) a value far from the
    identity, so that a wrong fold shows."""
    from .models.layers import BaseImplicit
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, BaseImplicit):
            assert module.form == 'vector'
            module.implicit.copy_(
                module.offset +
                0.3 * torch.randn(module.channels, generator=generator))


@torch.no_grad()
def stage_outputs(
    model: nn.Module,
    data: dict,
    proposals: Optional[list] = None
) -> Tuple[Dict[str, List[Tensor]], Optional[list]]:
    """The tensors a detector computes, stage by stage, in eval mode.

    Comparing two models' ``mode='tensor'`` outputs through a two-stage
    detector depends on the machine: a round-off-sized change of RPN scores
    changes which proposals survive top-k and NMS, and the RoI rows of those
    differ wholesale. So the RPN outputs are compared directly and the RoI
    head runs on given ``proposals`` (the reference model's), as
    ``TwoStageDetector._forward`` does with its own.

    Args:
        model (nn.Module): A single- or two-stage mmdet detector.
        data (dict): Its ``data_preprocessor`` output.
        proposals (list[InstanceData], optional): Proposals for the RoI
            head; by default the model's own.

    Returns:
        tuple: ``{stage: tensors}`` for ``'neck'`` (the features),
        ``'rpn'``, ``'roi'`` or ``'head'``, and the proposals used.
    """
    samples = data['data_samples']
    features = model.extract_feat(data['inputs'])
    outputs = dict(neck=list(features))
    if not getattr(model, 'with_rpn', False) and not hasattr(
            model, 'roi_head'):
        outputs['head'] = tree_leaves(model.bbox_head.forward(features))
        return outputs, None
    if not isinstance(model.rpn_head, EmbeddingRPNHead):
        outputs['rpn'] = tree_leaves(model.rpn_head.forward(features))
    if proposals is None:
        proposals = model.rpn_head.predict(features, samples, rescale=False)
    # a copy: Sparse R-CNN's RoI head pops the proposal features
    outputs['roi'] = tree_leaves(
        model.roi_head.forward(features, copy.deepcopy(proposals), samples))
    return outputs, proposals


def assert_close_stages(expected: Dict[str, List[Tensor]],
                        actual: Dict[str, List[Tensor]],
                        rtol: float = 1e-4) -> None:
    """Assert that two :func:`stage_outputs` agree within ``rtol`` of each
    tensor's largest value, stage by stage."""
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
    stack = [model.get('train_cfg'), model.get('test_cfg')]
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            if isinstance(node.get('sampler'), dict) and \
                    'num' in node.sampler:
                node.sampler.num = min(node.sampler.num, 64)
            for stage in ('rpn', 'rpn_proposal'):
                if 'max_per_img' in node.get(stage, {}):
                    node[stage].max_per_img = min(node[stage].max_per_img, 100)
    backbone = model.backbone
    if backbone.type == 'ResNet' and backbone.depth == 50:
        backbone.depth = 18
        reader = model.get('neck') or model.get('panoptic_head')
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


# Crafted mmengine work dirs, for the analysis tools (compare, plot).
FASTER_RCNN = dict(type='FasterRCNN', neck=dict(type='FPN'))
FASTER_RCNN_YOLOR = dict(
    type='FasterRCNN', neck=dict(type='YOLORNeck', neck=dict(type='FPN')))


def train_records(first_step, last_step, iters_per_epoch=4):
    """Training lines of scalars.json for steps first..last."""
    return [
        dict(
            base_lr=0.01,
            lr=0.01,
            data_time=0.01,
            grad_norm=5.0,
            loss=5.0 - 0.1 * step,
            loss_cls=1.0,
            time=0.2,
            epoch=(step - 1) // iters_per_epoch + 1,
            iter=step,
            step=step) for step in range(first_step, last_step + 1)
    ]


def val_record(epoch, box, mask=None):
    """A validation line: ``box``/``mask`` are (mAP, mAP_50, mAP_75)."""
    record = {}
    for task, values in (('bbox', box), ('segm', mask)):
        if values is None:
            continue
        for suffix, value in zip(('', '_50', '_75'), values):
            record[f'coco/{task}_mAP{suffix}'] = value
        record.update({
            f'coco/{task}_mAP_s': 0.2,
            f'coco/{task}_mAP_m': 0.4,
            f'coco/{task}_mAP_l': 0.5
        })
    record.update(data_time=0.01, time=0.1, step=epoch)
    return record


def make_work_dir(root, name, model, runs, config_name='faster-rcnn_r50'):
    """Write an mmengine-like work dir ``root/name`` and return its path.

    Args:
        model (dict): ``model`` of the config dumps.
        runs (list[tuple[str, list[dict]]]): ``(timestamp, scalars.json
            records)`` of each run.
        config_name (str): Stem of the top-level config dump.
    """
    work_dir = root / name
    config_text = f'model = {model!r}\n'
    for timestamp, records in runs:
        vis_data = work_dir / timestamp / 'vis_data'
        vis_data.mkdir(parents=True)
        (vis_data / 'scalars.json').write_text(''.join(
            json.dumps(record) + '\n' for record in records))
        (vis_data / 'config.py').write_text(config_text)
    (work_dir / f'{config_name}.py').write_text(config_text)
    (work_dir / 'epoch_1.pth').write_bytes(b'')
    return str(work_dir)


def one_run(box, mask=None, epochs=2):
    """The runs of a work dir trained once for ``epochs`` epochs that ends
    with ``box``/``mask`` metrics."""
    records = []
    for epoch in range(1, epochs + 1):
        records += train_records(4 * epoch - 3, 4 * epoch)
        final = epoch == epochs
        records.append(
            val_record(epoch, box if final else (0.1, 0.2, 0.1),
                       mask if final else None))
    return [('20240101_000000', records)]
