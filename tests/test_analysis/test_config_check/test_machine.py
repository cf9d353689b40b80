# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.hub import get_config

from mmdet_yolor.analysis.config_check import machine
from mmdet_yolor.analysis.config_check.machine import NotRunnable


def test_language_grounded_is_out_of_scope():
    cfg = get_config('mmdet::glip/glip_atss_swin-t_a_fpn_dyhead_16xb2_'
                     'ms-2x_funtune_coco.py')
    with pytest.raises(machine.NotRunnable, match='language-grounded'):
        machine.check_in_scope(cfg)


def test_trackers_and_unknown_types_are_out_of_scope():
    with pytest.raises(NotRunnable, match='ByteTrack is a tracking/video'):
        machine.check_in_scope(Config(dict(model=dict(type='ByteTrack'))))
    with pytest.raises(NotRunnable, match='type Nope is not registered'):
        machine.check_in_scope(Config(dict(model=dict(type='Nope'))))
    machine.check_in_scope(Config(dict(model=dict(type='FCOS'))))


def test_adapt_to_machine(settings):
    cfg = get_config('mmdet::simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_'
                     '4conv1fc_syncbn-all_32xb2-ssj-270k_coco.py')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    assert machine.adapt_to_machine(cfg, settings.image_shapes()) == [
        'AMP off', 'BatchFixedSizePad to the batch size', 'SyncBN -> BN'
    ]
    assert 'SyncBN' not in str(cfg.model)
    assert 'loss_scale' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.model.data_preprocessor.batch_augments[0].size == (192, 192)

    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    assert machine.adapt_to_machine(cfg, settings.image_shapes()) == [
        'BN statistics learned (norm_eval=False)', 'pretrained weights dropped'
    ]
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.backbone.norm_eval is False


def test_caffe_style_bn_learns_its_statistics_with_a_nonzero_eps():
    # a ResNet takes norm_eval=True by default: set or not, it is turned off
    cfg = Config(
        dict(
            model=dict(
                type='FCOS',
                backbone=dict(
                    type='ResNet',
                    norm_cfg=dict(type='BN', eps=0),
                    init_cfg=dict(type='Pretrained', checkpoint='x.pth')),
                neck=dict(
                    type='FPN',
                    norm_cfg=dict(type='MMSyncBN'),
                    init_cfg=dict(type='Pretrained', checkpoint='y.pth')))))
    assert machine.adapt_to_machine(cfg, [(96, 128), (128, 96)]) == [
        'BN statistics learned (norm_eval=False)',
        'SyncBN -> BN',
        'pretrained weights dropped',
    ]
    backbone, neck = cfg.model.backbone, cfg.model.neck
    assert backbone.norm_eval is False and 'eps' not in backbone.norm_cfg
    assert backbone.init_cfg is None and neck.init_cfg is None
    # FPN takes no norm_eval: nothing to learn beyond its weights
    assert 'norm_eval' not in neck and neck.norm_cfg.type == 'BN'


def test_a_teacher_checkpoint_is_made_here_from_the_teacher_config(
        settings, tmp_path):
    # LD names its teacher's config relative to an mmdet checkout and loads
    # trained weights into it
    cfg = get_config('mmdet::ld/ld_r18-gflv1-r101_fpn_1x_coco.py')
    assert cfg.model.teacher_config == 'configs/gfl/gfl_r101_fpn_ms-2x_coco.py'
    done = machine.adapt_to_machine(cfg, settings.image_shapes(), tmp_path)
    assert 'teacher checkpoint made here' in done
    assert 'teacher config read in' in done
    # read from the installed mmdet, its pretrained weights dropped
    teacher_cfg = cfg.model.teacher_config.model
    assert teacher_cfg.backbone.depth == 101
    assert teacher_cfg.backbone.init_cfg is None
    assert cfg.model.teacher_ckpt == str(tmp_path / 'teacher_ckpt.pth')
    model = MODELS.build(cfg.model)  # loads it
    saved = torch.load(cfg.model.teacher_ckpt)['state_dict']
    assert saved.keys() == model.teacher_model.state_dict().keys()
    for key, value in model.teacher_model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_weights_loaded_at_build_time_without_a_work_dir_are_not_runnable(
        settings):
    cfg = get_config('mmdet::ld/ld_r18-gflv1-r101_fpn_1x_coco.py')
    with pytest.raises(machine.NotRunnable, match='teacher_ckpt='):
        machine.adapt_to_machine(cfg, settings.image_shapes())
    # nor other weights than a teacher's
    cfg = Config(
        dict(
            model=dict(
                type='FCOS',
                backbone=dict(
                    type='ResNet', depth=18, student_ckpt='student.pth'))))
    with pytest.raises(machine.NotRunnable, match='student_ckpt=student'):
        machine.adapt_to_machine(cfg, settings.image_shapes(), '.')


def test_not_runnable_reason():
    error = RuntimeError('deform_roi_pool_forward_impl: implementation for '
                         'device cpu not found.')
    assert machine.not_runnable_reason(error) == (
        'mmcv op deform_roi_pool '
        'has no CPU kernel (CUDA only)')
    missing = ModuleNotFoundError(
        "No module named 'torchvision'", name='torchvision')
    assert 'torchvision' in machine.not_runnable_reason(missing)
    assert machine.not_runnable_reason(ValueError('shapes differ')) is None


def test_not_runnable_reasons_of_known_failures():
    bug = AttributeError("'SSDHead' object has no attribute 'loss_cls'")
    assert machine.not_runnable_reason(bug).startswith('mmdet 3.3.0 bug')

    # a missing package, found along the chain of causes or in the text
    # of a failed custom_imports
    try:
        try:
            raise ModuleNotFoundError('x', name='mmpretrain.models')
        except ModuleNotFoundError as cause:
            raise KeyError('MMPretrain is not in the registry') from cause
    except KeyError as error:
        assert machine.missing_package(error) == 'mmpretrain'
        assert machine.not_runnable_reason(error) == (
            'needs the mmpretrain package: ' +
            machine.PACKAGE_NOTES['mmpretrain'])
    failed_import = ImportError(
        "Failed to import custom modules from {'imports': ['mmseg']}")
    assert machine.not_runnable_reason(failed_import) == (
        'needs the mmseg package: not installed')
    assert machine.not_runnable_reason(RuntimeError('other')) is None


def test_test_proposals_are_capped_by_proposals_times_classes(settings):
    # V3Det: 13204 classes, each a candidate of every proposal for an
    # untrained sigmoid classifier
    cfg = get_config('mmdet::v3det/faster_rcnn_r50_fpn_8x4_sample1e-3_'
                     'mstrain_v3det_2x.py')
    assert cfg.model.test_cfg.rpn.max_per_img == 1000
    done = machine.adapt_to_machine(cfg, settings.image_shapes())
    assert 'test proposals capped (proposals x classes <= 250k)' in done
    assert cfg.model.test_cfg.rpn.max_per_img == \
        machine.MAX_NMS_CANDIDATES // 13204
    # COCO's 80 classes and 1000 proposals stay as they are
    cfg = get_config('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    assert not any(
        'proposals' in phrase
        for phrase in machine.adapt_to_machine(cfg, settings.image_shapes()))
    assert cfg.model.test_cfg.rpn.max_per_img == 1000
