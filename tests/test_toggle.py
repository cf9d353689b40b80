# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config as get_mmdet_config
from mmengine.optim import build_optim_wrapper
from torch import nn

from mmdet_yolor import yolorize
from mmdet_yolor.package_data import SEED_CONFIGS, get_config
from mmdet_yolor.toggle import YolorizeError, is_yolorized, unyolorize

from yolor_testing import shrink_backbone


def test_returns_a_copy():
    cfg = get_config('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    yolor = yolorize(cfg)
    assert cfg.model.neck.type == 'FPN'
    assert yolor.model.neck.type == 'YOLORNeck'
    assert yolor.model.neck.neck == cfg.model.neck
    assert yolor.model.bbox_head.head == cfg.model.bbox_head


def test_two_stage_heads_and_roi_heads():
    cfg = get_config('mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    model = yolorize(cfg).model
    assert model.rpn_head.type == 'YOLORHead'
    assert model.roi_head.type == 'StandardRoIHead'
    assert model.roi_head.bbox_head.type == 'YOLORHead'
    assert model.roi_head.mask_head.type == 'YOLORHead'
    assert model.roi_head.bbox_roi_extractor == \
        cfg.model.roi_head.bbox_roi_extractor


def test_stage_head_lists_and_embedding_rpn():
    cfg = get_config('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py')
    model = yolorize(cfg).model
    assert model.rpn_head == cfg.model.rpn_head  # EmbeddingRPNHead
    assert [h.type for h in model.roi_head.bbox_head] == ['YOLORHead'] * 6
    assert [h.head for h in model.roi_head.bbox_head] == \
        cfg.model.roi_head.bbox_head


def test_switches():
    cfg = get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    fa_only = yolorize(cfg, prediction_refinement=False).model
    assert fa_only.neck.type == 'YOLORNeck'
    assert fa_only.rpn_head.type == 'RPNHead'
    pr_only = yolorize(cfg, feature_alignment=False).model
    assert pr_only.neck.type == 'FPN'
    assert pr_only.rpn_head.type == 'YOLORHead'
    with pytest.raises(
            YolorizeError,
            match='enable feature_alignment or '
            'prediction_refinement'):
        yolorize(cfg, feature_alignment=False, prediction_refinement=False)


def test_options_reach_the_wrappers():
    cfg = get_config('atss/atss_r50_fpn_1x_coco.py')
    model = yolorize(
        cfg,
        implicit_cfg=dict(form='mf', num_atoms=2),
        alignment_operator='multiply',
        share_across_levels=True).model
    assert model.neck.operator == 'multiply'
    assert model.neck.implicit_cfg == dict(form='mf', num_atoms=2)
    assert model.bbox_head.implicit_cfg == dict(form='mf', num_atoms=2)
    assert model.bbox_head.share_across_levels


def test_custom_imports_and_no_weight_decay():
    cfg = get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    cfg.custom_imports = dict(imports=['os.path'])
    yolor = yolorize(cfg)
    assert yolor.custom_imports == dict(
        imports=['os.path', 'mmdet_yolor'], allow_failed_imports=False)
    assert yolor.optim_wrapper.paramwise_cfg.custom_keys == {
        'implicit_': dict(decay_mult=0.)
    }


def test_implicit_parameters_get_no_weight_decay():
    cfg = yolorize(get_config('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'))
    model = MODELS.build(shrink_backbone(cfg.model))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {}
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optim_wrapper.optimizer.param_groups:
        for param in group['params']:
            decay[names[id(param)]] = group['weight_decay']
    implicit = [name for name in decay if '.implicit_' in name]
    assert len(implicit) == 5 + 3 * 2 * 5  # neck levels, 3 layers x 2 x 5
    assert all(decay[name] == 0 for name in implicit)
    assert decay['bbox_head.conv_cls.weight'] == 1e-4


def test_optimizer_without_weight_decay_gets_no_decay_key():
    # CornerNet trains with Adam and no weight_decay: mmengine refuses a
    # decay_mult there ('base_wd should not be None')
    cfg = yolorize(
        get_mmdet_config('mmdet::cornernet/cornernet_hourglass104_'
                         '8xb6-210e-mstest_coco.py'))
    assert 'weight_decay' not in cfg.optim_wrapper.optimizer
    assert 'paramwise_cfg' not in cfg.optim_wrapper
    model = nn.Sequential(nn.Linear(2, 2))
    build_optim_wrapper(model, cfg.optim_wrapper)


def test_config_without_neck_aligns_the_backbone_outputs(tmp_path):
    config = tmp_path / 'no_neck.py'
    config.write_text("model = dict(type='CornerNet', "
                      "backbone=dict(type='HourglassNet'), "
                      "bbox_head=dict(type='CornerHead', num_classes=3))")
    cfg = Config.fromfile(str(config))
    model = yolorize(cfg).model
    assert model.backbone.type == 'YOLORBackbone'
    assert model.backbone.backbone == dict(type='HourglassNet')
    assert model.bbox_head.type == 'YOLORHead'
    assert unyolorize(yolorize(cfg)).model == cfg.model
    with pytest.raises(
            YolorizeError,
            match=r"placement 'output_convs' .* has no neck.*not --yolor "
            'foldable'):
        yolorize(cfg, foldable=True)


def test_config_without_neck_or_backbone_is_refused(tmp_path):
    config = tmp_path / 'headless.py'
    config.write_text("model = dict(type='SingleStageDetector', "
                      "bbox_head=dict(type='FCOSHead'))")
    cfg = Config.fromfile(str(config))
    with pytest.raises(
            YolorizeError,
            match='model in .*headless.py has neither a neck nor a '
            r'backbone.*--yolor pr'):
        yolorize(cfg)
    assert yolorize(cfg, feature_alignment=False).model.bbox_head.type == \
        'YOLORHead'


def test_every_head_is_wrapped_and_heads_without_predictions_are_not():
    cfg = get_config('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py')
    cfg.model.rpn_head.type = 'CenterNetHead'  # any head type is wrapped
    model = yolorize(cfg).model
    assert model.rpn_head.type == 'YOLORHead'
    assert all(head.type == 'YOLORHead' for head in model.roi_head.bbox_head)
    cfg = get_config('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py')
    assert yolorize(cfg).model.rpn_head.type == 'EmbeddingRPNHead'
    panoptic = get_mmdet_config(
        'mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py')
    model = yolorize(panoptic).model
    assert model.semantic_head.type == 'YOLORHead'
    assert model.panoptic_fusion_head.type == 'HeuristicFusionHead'
    # the backbone stage a C4 RoI head shares is no prediction head
    c4 = get_mmdet_config(
        'mmdet::faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py')
    roi_head = yolorize(c4).model.roi_head
    assert roi_head.shared_head.type == 'ResLayer'
    assert roi_head.bbox_head.type == 'YOLORHead'


def test_unknown_head_type_is_refused():
    cfg = get_config('atss/atss_r50_fpn_1x_coco.py')
    cfg.model.bbox_head.type = 'ATSSHeadd'
    with pytest.raises(
            YolorizeError,
            match="model.bbox_head in .*'ATSSHeadd' "
            'is not registered'):
        yolorize(cfg)


def test_yolor_config_is_refused():
    cfg = yolorize(get_config('atss/atss_r50_fpn_1x_coco.py'))
    with pytest.raises(YolorizeError, match='already a YOLORNeck'):
        yolorize(cfg)


def test_neck_list_is_wrapped_as_a_whole():
    cfg = get_config('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    necks = [cfg.model.neck, dict(type='BFP', in_channels=256, num_levels=5)]
    cfg.model.neck = necks
    neck = yolorize(cfg).model.neck
    assert neck.type == 'YOLORNeck' and neck.neck == necks
    with pytest.raises(
            YolorizeError, match='output convs of an FPN.*FPN \\+ BFP'):
        yolorize(cfg, foldable=True)


def test_foldable_placement_needs_an_fpn():
    cfg = get_mmdet_config('mmdet::detr/detr_r50_8xb2-500e_coco.py')
    with pytest.raises(
            YolorizeError,
            match='output convs of an FPN, and model.neck .* is '
            r'ChannelMapper.*--yolor all'):
        yolorize(cfg, foldable=True)
    assert yolorize(cfg).model.neck.type == 'YOLORNeck'


def test_detector_held_by_a_wrapper_is_yolorized():
    cfg = get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    detector = cfg.model
    cfg.model = dict(type='SoftTeacher', detector=detector)
    model = yolorize(cfg).model
    assert model.detector.neck.type == 'YOLORNeck'
    assert model.detector.rpn_head.type == 'YOLORHead'


@pytest.mark.parametrize('baseline,yolor', SEED_CONFIGS)
def test_shipped_yolor_config_equals_yolorized_baseline(baseline, yolor):
    expected = yolorize(get_config(baseline))
    shipped = get_config(yolor)
    assert shipped.model == expected.model
    assert shipped.optim_wrapper == expected.optim_wrapper
    assert shipped.custom_imports == expected.custom_imports
    # and nothing else differs
    assert shipped.to_dict() == expected.to_dict()


@pytest.mark.parametrize('baseline,yolor', SEED_CONFIGS)
def test_unyolorize_gives_the_baseline_model(baseline, yolor):
    plain = unyolorize(get_config(yolor))
    expected = get_config(baseline)
    assert plain.model == expected.model
    assert 'custom_imports' not in plain
    assert plain.optim_wrapper == expected.optim_wrapper
    assert is_yolorized(get_config(yolor)) and not is_yolorized(plain)


def test_unyolorize_keeps_overrides_of_the_wrapped_modules():
    # a user's key on a wrapper belongs to the module it wraps
    cfg = get_config('fcos/fcos-yolor_r50-caffe_fpn_gn-head_1x_coco.py')
    cfg.merge_from_dict({
        'model.neck.out_channels': 128,
        'model.bbox_head.loss_cls.loss_weight': 2.0
    })
    plain = unyolorize(cfg)
    assert plain.model.neck.type == 'FPN'
    assert plain.model.neck.out_channels == 128
    assert plain.model.bbox_head.loss_cls.loss_weight == 2.0
    assert plain.model.bbox_head.loss_cls.type == 'FocalLoss'


def test_foldable_preset():
    cfg = yolorize(
        get_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
        foldable=True)
    assert cfg.model.neck.placement == 'output_convs'
    assert cfg.model.rpn_head.share_across_levels
    assert cfg.model.rpn_head.input_implicit == 'foldable'
    assert cfg.model.roi_head.bbox_head.input_implicit == 'foldable'
