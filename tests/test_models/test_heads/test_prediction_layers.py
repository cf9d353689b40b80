# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Finding the prediction layers of heads, most of which the search was not
written for: mmdet 3.3's head zoo, built from its own configs."""
import copy

import pytest
import torch
from mmdet.models.dense_heads import FCOSHead, Mask2FormerHead, MaskFormerHead
from mmdet.registry import MODELS
from mmengine.hub import get_config
from torch import nn

from mmdet_yolor.config_edits import strip_pretrained
from mmdet_yolor.models.heads import (PREDICTION_LAYERS, PredictionLayers,
                                      find_prediction_layers,
                                      prediction_layers,
                                      search_prediction_layers)
from mmdet_yolor.models.heads.prediction_layers import table_entry


def zoo_model(config):
    cfg = get_config(f'mmdet::{config}')
    strip_pretrained(cfg.model)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


# What the generic search finds in heads of the zoo: config, head path in
# the model, prediction sites (comments: what it leaves out as intermediate).
ZOO_HEADS = [
    # rpn_conv (3x3, feature wide) feeds rpn_cls and rpn_reg
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'rpn_head',
     ['rpn_cls', 'rpn_reg']),
    # the stacked shared_fcs feed fc_cls and fc_reg
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'roi_head.bbox_head',
     ['fc_cls', 'fc_reg']),
    # the upsampling transposed conv feeds conv_logits
    ('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py', 'roi_head.mask_head',
     ['conv_logits']),
    # ATSS's subclass with layers of its own names
    ('vfnet/vfnet_r50_fpn_1x_coco.py', 'bbox_head',
     ['vfnet_reg', 'vfnet_reg_refine', 'vfnet_cls']),
    ('gfl/gfl_r50_fpn_1x_coco.py', 'bbox_head', ['gfl_cls', 'gfl_reg']),
    # Sequentials ending in a conv
    ('tood/tood_r50_fpn_1x_coco.py', 'bbox_head',
     ['tood_cls', 'tood_reg', 'cls_prob_module', 'reg_offset_module']),
    ('centernet/centernet_r18_8xb16-crop512-140e_coco.py', 'bbox_head',
     ['heatmap_head', 'wh_head', 'offset_head']),
    # per-level ModuleLists
    ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', 'bbox_head',
     ['rtm_cls', 'rtm_reg']),
    ('yolox/yolox_tiny_8xb8-300e_coco.py', 'bbox_head',
     ['multi_level_conv_cls', 'multi_level_conv_reg', 'multi_level_conv_obj']),
    ('yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py', 'bbox_head',
     ['convs_pred']),
    ('ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py', 'bbox_head',
     ['cls_convs', 'reg_convs']),
    # reppoints_pts_init_conv feeds reppoints_pts_init_out
    ('reppoints/reppoints-moment_r50_fpn_1x_coco.py', 'bbox_head', [
        'reppoints_cls_out', 'reppoints_pts_init_out',
        'reppoints_pts_refine_out'
    ]),
    # DETR family: Linear, per-decoder-layer branches, an MLP
    ('detr/detr_r50_8xb2-500e_coco.py', 'bbox_head', ['fc_cls', 'fc_reg']),
    ('deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py',
     'bbox_head', ['cls_branches', 'reg_branches']),
    ('dab_detr/dab-detr_r50_8xb2-50e_coco.py', 'bbox_head',
     ['fc_cls', 'fc_reg']),
    # instance heads: SOLO's per-level masks (one of them as wide as the
    # features), CondInst's controller, YOLACT's coefficients
    ('solo/solo_r50_fpn_1x_coco.py', 'mask_head',
     ['conv_mask_list', 'conv_cls']),
    ('condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py', 'bbox_head',
     ['conv_cls', 'conv_reg', 'conv_centerness', 'controller']),
    ('yolact/yolact_r50_1xb8-55e_coco.py', 'bbox_head',
     ['conv_cls', 'conv_reg', 'conv_coeff']),
    # RoI heads beyond boxes and masks: a stacked conv + fc mask IoU head, a
    # transposed conv, a Conv1d point head, a semantic head
    ('ms_rcnn/ms-rcnn_r50_fpn_1x_coco.py', 'roi_head.mask_iou_head',
     ['fc_mask_iou']),
    ('grid_rcnn/grid-rcnn_r50_fpn_gn-head_2x_coco.py', 'roi_head.grid_head',
     ['deconv2']),
    ('point_rend/point-rend_r50-caffe_fpn_ms-1x_coco.py',
     'roi_head.point_head', ['fc_logits']),
    ('point_rend/point-rend_r50-caffe_fpn_ms-1x_coco.py', 'roi_head.mask_head',
     ['fc_logits']),
    ('htc/htc_r50_fpn_1x_coco.py', 'roi_head.semantic_head', ['conv_logits']),
    ('panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py', 'semantic_head',
     ['conv_logits']),
    # a head made of stage heads: Cascade RPN's first stage regresses only
    ('cascade_rpn/cascade-rpn_faster-rcnn_r50-caffe_fpn_1x_coco.py',
     'rpn_head', ['stages.0.rpn_reg', 'stages.1.rpn_cls', 'stages.1.rpn_reg']),
]


@pytest.mark.parametrize(
    'config,head,expected',
    ZOO_HEADS,
    ids=[f'{c.split("/")[0]}-{h}' for c, h, _ in ZOO_HEADS])
def test_generic_search_finds_the_prediction_layers(config, head, expected):
    module = zoo_model(config).get_submodule(head)
    assert search_prediction_layers(module) == expected


def test_modulelists_give_one_site_per_item_and_shared_layers_once():
    # Deformable DETR without box refinement shares one Linear across its
    # decoder layers: one site, while the refining variant has one per layer
    shared = zoo_model('deformable_detr/deformable-detr_r50_16xb2-50e_coco.py')
    sites = find_prediction_layers(shared.bbox_head)
    assert [(s.name, s.per_level)
            for s in sites] == [('cls_branches.0', True),
                                ('reg_branches.0.4', True)]
    refine = zoo_model(
        'deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py')
    sites = find_prediction_layers(refine.bbox_head)
    assert len(sites) == 2 * 6 and all(s.per_level for s in sites)
    # a single shared layer of a dense head serves every level
    sites = find_prediction_layers(
        zoo_model('atss/atss_r50_fpn_1x_coco.py').bbox_head)
    assert [(s.name, s.per_level)
            for s in sites] == [('atss_cls', False), ('atss_reg', False),
                                ('atss_centerness', False)]


def test_table_entries_match_by_class_along_the_mro():
    assert table_entry(Mask2FormerHead) is PREDICTION_LAYERS[MaskFormerHead]
    # a class merely named like a listed one is not matched
    impostor = type('MaskFormerHead', (nn.Module, ), {})
    assert table_entry(impostor) is None


@MODELS.register_module(force=True)
class RenamedFCOSHead(FCOSHead):
    """FCOS whose classifier is called ``cls_logits``, as subclasses in
    downstream projects rename layers."""

    def _init_predictor(self):
        super()._init_predictor()
        self.cls_logits = self._modules.pop('conv_cls')

    def forward_single(self, x, scale, stride):
        cls_feat, reg_feat = x, x
        for conv in self.cls_convs:
            cls_feat = conv(cls_feat)
        for conv in self.reg_convs:
            reg_feat = conv(reg_feat)
        bbox_pred = scale(self.conv_reg(reg_feat)).float().exp()
        return (self.cls_logits(cls_feat), bbox_pred,
                self.conv_centerness(cls_feat))


FCOS_HEAD = dict(
    type='RenamedFCOSHead',
    num_classes=3,
    in_channels=8,
    feat_channels=32,
    stacked_convs=1,
    strides=[8, 16])


def test_subclass_with_renamed_layers_is_found(monkeypatch):
    head = MODELS.build(dict(type='YOLORHead', head=FCOS_HEAD))
    names = [site.name for site in find_prediction_layers(head)]
    assert names == ['conv_reg', 'cls_logits', 'conv_centerness']
    assert len(head.cls_logits.implicit_m) == 2
    head(tuple(torch.randn(1, 8, s, s) for s in (8, 4)))

    # an entry of the base class that names layers the subclass renamed: the
    # search takes over, with a warning saying so
    monkeypatch.setitem(
        PREDICTION_LAYERS, FCOSHead,
        PredictionLayers(('conv_cls', 'conv_reg'), 'for the test'))
    warnings = []
    monkeypatch.setattr(prediction_layers, 'print_log',
                        lambda message, **kwargs: warnings.append(message))
    head = MODELS.build(dict(type='YOLORHead', head=FCOS_HEAD))
    assert [site.name for site in find_prediction_layers(head)] == names
    assert warnings[0].startswith(
        'RenamedFCOSHead: its PREDICTION_LAYERS entry does not fit')

    # its own entry decides
    monkeypatch.setitem(PREDICTION_LAYERS, RenamedFCOSHead,
                        PredictionLayers(('cls_logits', ), 'for the test'))
    head = MODELS.build(dict(type='YOLORHead', head=copy.deepcopy(FCOS_HEAD)))
    assert [site.name for site in find_prediction_layers(head)] == \
        ['cls_logits']
