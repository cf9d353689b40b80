# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""A user's overrides reach the module they name, YOLOR or not.

For each seed-table detector and the keys mmdet users change every day,
overriding the baseline and then applying YOLOR builds the same model as
applying YOLOR and then overriding: the same state-dict keys and shapes,
and the override visible on the built module. Both through
``Config.merge_from_dict`` and through the tools' ``--cfg-options`` (a
shipped YOLOR config against ``--yolor`` on its baseline, which merges and
then yolorizes). Also on
detectors without a neck, whose backbone carries the alignment.
"""
import argparse
import copy

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config
from torch import nn

from mmdet_yolor import runs, yolorize
from mmdet_yolor.package_data import SEED_CONFIGS, config_path

SMALLER_BACKBONE = [
    'model.backbone.depth=18', 'model.neck.in_channels=[64,128,256,512]'
]
FROM_SCRATCH = ['model.backbone.init_cfg=None']
GROUP_NORM = [
    'model.backbone.norm_cfg.type=GN', 'model.backbone.norm_cfg.num_groups=32'
]
DENSE_HEAD = {
    'neck width': [
        'model.neck.out_channels=128', 'model.bbox_head.in_channels=128',
        'model.bbox_head.feat_channels=128'
    ],
    'classes': ['model.bbox_head.num_classes=3'],
    'test and loss': [
        'model.test_cfg.score_thr=0.3',
        'model.bbox_head.loss_cls.loss_weight=2.0'
    ],
}
FASTER = {
    'neck width': [
        'model.neck.out_channels=128', 'model.rpn_head.in_channels=128',
        'model.rpn_head.feat_channels=128',
        'model.roi_head.bbox_roi_extractor.out_channels=128',
        'model.roi_head.bbox_head.in_channels=128'
    ],
    'classes': ['model.roi_head.bbox_head.num_classes=3'],
    'test and loss': [
        'model.test_cfg.rcnn.score_thr=0.3',
        'model.rpn_head.loss_bbox.loss_weight=2.0'
    ],
}
MASK = {
    'neck width':
    FASTER['neck width'] + [
        'model.roi_head.mask_roi_extractor.out_channels=128',
        'model.roi_head.mask_head.in_channels=128'
    ],
    'classes':
    FASTER['classes'] + ['model.roi_head.mask_head.num_classes=3'],
    'test and loss':
    FASTER['test and loss'],
}
SPARSE_STAGES = range(6)
SPARSE = {
    'neck width': [
        'model.neck.out_channels=128',
        'model.rpn_head.proposal_feature_channel=128',
        'model.roi_head.bbox_roi_extractor.out_channels=128'
    ] + [
        f'model.roi_head.bbox_head.{stage}.{key}=128'
        for stage in SPARSE_STAGES
        for key in ('in_channels', 'dynamic_conv_cfg.in_channels',
                    'dynamic_conv_cfg.out_channels')
    ],
    'classes': [
        f'model.roi_head.bbox_head.{stage}.num_classes=3'
        for stage in SPARSE_STAGES
    ],
    'test and loss': [
        'model.test_cfg.rcnn.max_per_img=50',
        'model.roi_head.bbox_head.0.loss_cls.loss_weight=4.0'
    ],
}
HEAD_OVERRIDES = {
    'faster_rcnn': FASTER,
    'mask_rcnn': MASK,
    'sparse_rcnn': SPARSE,
    'fcos': DENSE_HEAD,
    'atss': DENSE_HEAD,
}


def reached_the_module(model, override):
    """Whether the built model shows the override (so that the invariant is
    not met by two builds ignoring it alike)."""
    if override == 'smaller backbone':
        return model.backbone.depth == 18
    if override == 'from scratch':  # ResNet then sets its default init
        return 'Pretrained' not in str(model.backbone.init_cfg)
    if override == 'group norm':
        return isinstance(model.backbone.norm1, nn.GroupNorm)
    if override == 'neck width':
        return model.neck.out_channels == 128 and \
            model.neck.implicit_alignment[0].channels == 128
    heads = [
        module for name, module in model.named_modules()
        if name.endswith('_head') or name.split('.')[-2:-1] == ['bbox_head']
    ]
    if override == 'classes':
        return any(getattr(head, 'num_classes', None) == 3 for head in heads)
    # test and loss
    return any(
        getattr(getattr(head, loss, None), 'loss_weight', None) in (2.0, 4.0)
        for head in heads for loss in ('loss_cls', 'loss_bbox'))


def signature(model):
    """State-dict keys and shapes."""
    return {
        key: tuple(value.shape)
        for key, value in model.state_dict().items()
    }


def parse_cfg_options(options):
    """``--cfg-options`` as the tools parse them."""
    parser = argparse.ArgumentParser()
    runs.add_cfg_options_argument(parser)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def cases():
    for baseline, yolor in SEED_CONFIGS[:5]:
        folder = baseline.split('/')[0]
        overrides = {
            'smaller backbone': SMALLER_BACKBONE,
            'from scratch': FROM_SCRATCH,
            'group norm': GROUP_NORM,
            **HEAD_OVERRIDES[folder]
        }
        for name, options in overrides.items():
            yield pytest.param(
                baseline, yolor, name, options, id=f'{folder}-{name}')


@pytest.mark.parametrize('baseline,yolor_config,override,options', cases())
def test_overrides_commute_with_yolorize(baseline, yolor_config, override,
                                         options):
    values = parse_cfg_options(options)
    # Config.merge_from_dict, in memory
    cfg = Config.fromfile(config_path(baseline))
    merged = copy.deepcopy(cfg)
    merged.merge_from_dict(values)
    yolorized = yolorize(cfg)
    yolorized.merge_from_dict(values)
    first = MODELS.build(yolorize(merged).model)
    second = MODELS.build(yolorized.model)
    assert signature(first) == signature(second)
    assert reached_the_module(first, override)
    assert reached_the_module(second, override)
    # the tools: a shipped YOLOR config with --cfg-options, against --yolor
    # on its baseline (load_config merges, then yolorizes: ``first``)
    shipped = runs.load_config(config_path(yolor_config), values)
    assert signature(MODELS.build(shipped.model)) == signature(first)


# Detectors without a neck: the backbone carries the alignment.
NECKLESS = {
    'cornernet': 'cornernet/cornernet_hourglass104_8xb6-210e-mstest_coco.py',
    'centripetalnet': 'centripetalnet/'
    'centripetalnet_hourglass104_16xb6-crop511-210e-mstest_coco.py',
    'maskformer': 'maskformer/maskformer_r50_ms-16xb1-75e_coco.py',
    'mask2former': 'mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
}
NECKLESS_OPTIONS = {
    'cornernet': ['model.bbox_head.num_classes=3'],
    'centripetalnet': ['model.bbox_head.num_classes=3'],
    'maskformer': ['model.panoptic_head.loss_cls.loss_weight=2.0'],
    'mask2former': ['model.panoptic_head.loss_mask.loss_weight=2.0'],
}


@pytest.mark.parametrize('family', list(NECKLESS))
def test_backbone_overrides_reach_a_neckless_backbone(family):
    values = parse_cfg_options(FROM_SCRATCH + NECKLESS_OPTIONS[family])
    cfg = get_config(f'mmdet::{NECKLESS[family]}')
    merged = copy.deepcopy(cfg)
    merged.merge_from_dict(values)
    yolorized = yolorize(cfg)
    assert yolorized.model.backbone.type == 'YOLORBackbone'
    yolorized.merge_from_dict(values)
    first = MODELS.build(yolorize(merged).model)
    second = MODELS.build(yolorized.model)
    assert signature(first) == signature(second)
    for model in (first, second):
        assert 'Pretrained' not in str(model.backbone.init_cfg)
        head = getattr(model, 'bbox_head', None) or model.panoptic_head
        assert head.num_classes == 3 or any(
            getattr(loss, 'loss_weight', None) == 2.0
            for loss in (getattr(head, 'loss_cls', None),
                         getattr(head, 'loss_mask', None)))
