# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Mixed precision without a GPU: YOLOR detectors train and infer under
CPU autocast in bfloat16.

mmengine's ``AmpOptimWrapper`` asserts an accelerator, but its autocast
(``mmengine.runner.amp.autocast``) runs on the CPU in bfloat16: the
training steps run the model's loss path and a plain ``OptimWrapper``
inside its ``optim_context`` and that autocast, as ``AmpOptimWrapper``
does on a GPU (bfloat16 has float32's exponent range: no loss scaling).

mmcv 2.1's CPU kernels of NMS and RoIAlign take float32 only (its CUDA ones
also half): a two-stage detector stops in bfloat16 at its RPN's NMS
(asserted in :func:`test_mmcv_cpu_ops_stop_a_two_stage_detector_in_bf16`).
Faster R-CNN trains here up to there (backbone, neck and RPN with the RPN's
loss, which mmdet computes before that NMS) and is compared in bfloat16 on
its features and RPN outputs; its RoI head is checked in float32 (the fold)
and on the GPU (.dev_scripts/gpu_check.py).
"""
import copy
import traceback

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.optim import build_optim_wrapper
from mmengine.runner.amp import autocast

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.analysis.stages import stage_outputs
from mmdet_yolor.models import implicit_layers
from mmdet_yolor.package_data import get_config
from mmdet_yolor.stack_api import tree_leaves

from yolor_testing import (assert_close_stages, randomise_implicits,
                           shrink_backbone)

DETECTORS = {
    'fcos': 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    'atss': 'atss/atss_r50_fpn_1x_coco.py',
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
}
IMAGE_SHAPES = [(3, 96, 128), (3, 128, 96)]
STEPS = 2
# bfloat16 keeps 8 significant bits: each rounding is off by up to 2**-9
# (0.2 %) of its value, and the roundings of a shrunk ResNet-18, FPN and
# head (some 25 layers, each summing hundreds of products) add up. Measured
# against each output's largest value, most outputs here differ by 0.5 to
# 2 %; the largest difference seen was 5 % (ATSS's centerness on its
# coarsest level: few values, all near its largest). 8 % holds them with
# room, and stays well below what a YOLOR defect under autocast would give
# (an implicit skipped or applied twice: 30 % of its channels' values,
# randomise_implicits).
BF16_RTOL = 8e-2


def bf16_autocast():
    return autocast(device_type='cpu', dtype=torch.bfloat16)


def build(name):
    cfg = yolorize(get_config(DETECTORS[name]))
    torch.manual_seed(0)
    model = MODELS.build(shrink_backbone(cfg.model))
    model.init_weights()
    randomise_implicits(model)
    return model, cfg


def batch(model, training):
    packed = demo_mm_inputs(
        batch_size=2,
        image_shapes=IMAGE_SHAPES,
        num_items=[4, 4],
        num_classes=80)
    return model.data_preprocessor(packed, training)


def two_stage(name):
    return name == 'faster_rcnn'


def losses_in_bf16(name, model, data):
    """mmdet's losses of ``model`` as far as mmcv's CPU ops allow in
    bfloat16: all of a single-stage detector's, the RPN's of a two-stage
    one (with the class-agnostic labels TwoStageDetector.loss gives it)."""
    if not two_stage(name):
        return model(**data, mode='loss')
    samples = copy.deepcopy(data['data_samples'])
    for sample in samples:
        sample.gt_instances.labels = torch.zeros_like(
            sample.gt_instances.labels)
    return model.rpn_head.loss(model.extract_feat(data['inputs']), samples)


def trained_implicits(name, model):
    """The implicits :func:`losses_in_bf16` trains."""
    return {
        key: p
        for key, p in implicit_parameters(model).items()
        if not (two_stage(name) and key.startswith('roi_head.'))
    }


def implicit_parameters(model):
    return {
        f'{name}.{key}': parameter
        for name, layer in implicit_layers(model).items()
        for key, parameter in layer.named_parameters()
    }


@pytest.fixture(scope='module', params=list(DETECTORS))
def trained(request):
    """A YOLOR detector after STEPS bfloat16 training steps: (name, model,
    its implicits before training, the losses of each step, the gradients
    of the implicits in the last step)."""
    name = request.param
    model, cfg = build(name)
    model.train()
    before = {
        key: p.detach().clone()
        for key, p in implicit_parameters(model).items()
    }
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    data = batch(model, training=True)
    losses, grads = [], {}
    for _ in range(STEPS):
        with optim_wrapper.optim_context(model), bf16_autocast():
            parsed, log_vars = model.parse_losses(
                losses_in_bf16(name, model, data))
        optim_wrapper.backward(parsed)
        grads = {
            key: p.grad.clone()
            for key, p in implicit_parameters(model).items()
            if p.grad is not None
        }
        optim_wrapper.step()
        optim_wrapper.zero_grad()
        losses.append(log_vars)
    return name, model, before, losses, grads


def test_bf16_training_losses_are_finite(trained):
    name, model, _, losses, _ = trained
    assert len(losses) == STEPS
    for log_vars in losses:
        assert log_vars['loss'] > 0
        for key, value in log_vars.items():
            assert torch.isfinite(torch.tensor(value)), (name, key)


def test_implicits_stay_float32_get_gradients_and_update(trained):
    name, model, before, _, grads = trained
    implicits = implicit_parameters(model)
    assert implicits.keys() == before.keys() and implicits
    for key, parameter in implicits.items():
        # autocast casts copies for its ops: the parameters keep float32
        assert parameter.dtype == torch.float32, key
    assert grads.keys() == trained_implicits(name, model).keys(), name
    for key, grad in grads.items():
        assert grad.dtype == torch.float32 and torch.isfinite(grad).all(), key
    assert any(grad.abs().sum() > 0 for grad in grads.values())
    updated = [
        key for key, parameter in implicits.items()
        if not torch.equal(parameter.detach(), before[key])
    ]
    # every implicit with a gradient was moved by the optimizer
    assert updated == [key for key, g in grads.items() if g.abs().sum() > 0]


def test_bf16_trained_model_folds_exactly(trained):
    name, model, _, _, _ = trained
    model = copy.deepcopy(model).eval()
    data = batch(model, training=False)
    expected, proposals = stage_outputs(model, data)
    fuse_implicit(model, logger='silent')
    assert_close_stages(expected, stage_outputs(model, data, proposals)[0])


@pytest.mark.parametrize('name', DETECTORS)
def test_folded_inference_in_bf16_matches_fp32(name):
    unfolded = build(name)[0].eval()
    model = fuse_implicit(copy.deepcopy(unfolded), logger='silent')
    data = batch(model, training=False)
    # the unfolded model in fp32 first; the RoI heads of the bf16 run take
    # its proposals (an RPN's top-k and NMS would keep other boxes after any
    # rounding)
    expected, proposals = stage_outputs(unfolded, data)
    if two_stage(name):
        # mmcv's CPU RoIAlign takes no bfloat16: the RoI stage can't run
        del expected['roi']
        with bf16_autocast():
            features = model.extract_feat(data['inputs'])
            actual = dict(
                neck=list(features),
                rpn=tree_leaves(model.rpn_head.forward(features)))
    else:
        with bf16_autocast():
            actual, _ = stage_outputs(model, data, proposals)
    assert any(t.dtype == torch.bfloat16 for ts in actual.values() for t in ts)
    actual = {
        stage: [t.float() for t in tensors]
        for stage, tensors in actual.items()
    }
    assert_close_stages(expected, actual, rtol=BF16_RTOL)
    # and bf16 is really rounding: fp32's tolerance would not hold
    with pytest.raises(AssertionError):
        assert_close_stages(expected, actual, rtol=1e-5)


def test_mmcv_cpu_ops_stop_a_two_stage_detector_in_bf16():
    model, _ = build('faster_rcnn')
    data = batch(model.train(), training=True)
    with bf16_autocast(), pytest.raises(RuntimeError) as error:
        model(**data, mode='loss')
    # mmcv's CPU NMS of the RPN's proposals: its kernel is float32 only
    assert 'BFloat16' in str(error.value)
    innermost = traceback.extract_tb(error.value.__traceback__)[-1]
    assert innermost.filename.endswith('mmcv/ops/nms.py'), innermost
