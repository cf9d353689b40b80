# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Device portability without a GPU: each seed detector, baseline and YOLOR,
runs with every parameter and input on the ``meta`` device.

A tensor made on the CPU beside a model on another device (the classic
GPU-only bug) fails there as it would on CUDA: mixing a CPU tensor with a
meta tensor raises. Meta tensors have shapes and no values, so the tests
compare shapes with a CPU run of the same model.

What runs on ``meta``: the features, every head's forward (the dense heads,
the RPN, the RoI heads' box and mask heads on RoI features of the
extractor's shape), YOLOR's level bookkeeping and refinement inside them,
``fuse_implicit`` and the folded forward, and a training step up to the
backward pass and the optimizer's update. mmdet's own code stops the rest
(asserted in :func:`test_mmdet_stops_the_loss_on_meta`): computing targets
needs values, through ``.item()`` (a tensor used as a Python bool) or
``nonzero()`` (a data-dependent shape, which meta cannot compute).
"""
import copy
import traceback

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.deploy import fold_implicit
from mmdet_yolor.package_data import get_config
from mmdet_yolor.stack_api import tree_leaves

from yolor_testing import SEED_DETECTORS, randomise_implicits, shrink_backbone

FORMS = ('baseline', 'yolor')
IMAGE_SHAPE = (3, 96, 128)
NUM_ROIS = 6

# Where mmdet's loss stops on meta: (file, function) of the innermost mmdet
# frame, and why.
LOSS_STOPS = {
    # `if not inside_flags.any()`: a tensor as a Python bool is .item()
    'faster_rcnn': ('anchor_head.py', '_get_targets_single'),
    'mask_rcnn': ('anchor_head.py', '_get_targets_single'),
    'atss': ('atss_head.py', '_get_targets_single'),
    # `pos_inds = (...).nonzero()`: a data-dependent shape
    'fcos': ('fcos_head.py', 'loss_by_feat'),
    # RoIs mapped to their FPN level with `mask.nonzero()`
    'sparse_rcnn': ('single_level_roi_extractor.py', 'forward'),
}


def build(name, form):
    cfg = get_config(SEED_DETECTORS[name])
    if name == 'sparse_rcnn':
        # 10 learned proposals, not 100: six stages of them cost seconds
        cfg.model.rpn_head.num_proposals = 10
    if form == 'yolor':
        cfg = yolorize(cfg)
    torch.manual_seed(0)
    model = MODELS.build(shrink_backbone(cfg.model))
    model.init_weights()
    if form == 'yolor':
        randomise_implicits(model)
    return model


def batches(model, name):
    """A preprocessed training batch of two images, on the CPU and on
    ``meta``."""
    packed = demo_mm_inputs(
        batch_size=2,
        image_shapes=[IMAGE_SHAPE] * 2,
        num_items=[3, 3],
        num_classes=80,
        with_mask=name == 'mask_rcnn')
    data = model.data_preprocessor(packed, True)
    meta = dict(
        inputs=data['inputs'].to('meta'),
        data_samples=[sample.to('meta') for sample in data['data_samples']])
    return data, meta


def meta_batch(model, name):
    """The meta batch of :func:`batches` (before the model moves there)."""
    return batches(model, name)[1]


def roi_features(extractor, num_rois, device):
    """RoI features of the shape a single-level RoI extractor returns."""
    size = extractor.roi_layers[0].output_size
    return torch.rand(num_rois, extractor.out_channels, *size, device=device)


def head_outputs(model, features, data_samples, device):
    """Every head's forward on ``features``: the dense head's (single-stage)
    or the RPN's and the RoI heads' on random RoI features (two-stage: RoI
    extraction itself is stopped by mmdet on meta, see LOSS_STOPS)."""
    if not hasattr(model, 'roi_head'):
        return tree_leaves(model.bbox_head(features))
    roi_head = model.roi_head
    if roi_head.__class__.__name__.endswith('SparseRoIHead'):
        # no NMS in the learned proposals: they run on meta
        proposals = model.rpn_head.predict(features, data_samples)
        num_proposals = len(proposals[0])
        outputs = [p.bboxes for p in proposals]
        object_features = torch.stack([p.features for p in proposals])
        for stage, bbox_head in enumerate(roi_head.bbox_head):
            rois = roi_features(roi_head.bbox_roi_extractor[stage],
                                len(data_samples) * num_proposals, device)
            cls_score, bbox_pred, object_features, _ = bbox_head(
                rois, object_features)
            outputs += [cls_score, bbox_pred, object_features]
        return outputs
    outputs = tree_leaves(model.rpn_head(features))
    rois = roi_features(roi_head.bbox_roi_extractor, NUM_ROIS, device)
    outputs += tree_leaves(roi_head.bbox_head(rois))
    if roi_head.with_mask:
        rois = roi_features(roi_head.mask_roi_extractor, NUM_ROIS, device)
        outputs.append(roi_head.mask_head(rois))
    return outputs


def network(model, data):
    """Features and head outputs of ``model`` (on the device of
    ``data``)."""
    device = data['inputs'].device
    torch.manual_seed(0)
    features = list(model.extract_feat(data['inputs']))
    return features + head_outputs(model, features, data['data_samples'],
                                   device)


def shapes(tensors):
    return [tuple(t.shape) for t in tensors]


@pytest.fixture(scope='module', params=list(SEED_DETECTORS))
def name(request):
    return request.param


@pytest.mark.parametrize('form', FORMS)
def test_features_and_heads_run_on_meta(name, form):
    model = build(name, form).eval()
    cpu_model = copy.deepcopy(model)
    cpu_data, data = batches(model, name)
    model.to('meta')
    with torch.no_grad():
        outputs = network(model, data)
        expected = network(cpu_model, cpu_data)
    assert outputs and all(t.device.type == 'meta' for t in outputs)
    assert shapes(outputs) == shapes(expected)


def test_fuse_implicit_and_the_folded_model_run_on_meta(name):
    model = build(name, 'yolor').eval()
    cpu_model, to_fuse = copy.deepcopy(model), copy.deepcopy(model)
    data = meta_batch(model, name)
    model.to('meta')
    with torch.no_grad():
        unfolded = network(model, data)
    # the fold itself (weights rewritten in place) on meta, as on the CPU
    report = fold_implicit(model)
    cpu_report = fold_implicit(cpu_model)
    assert [(s.name, s.folded) for s in report.sites] == \
        [(s.name, s.folded) for s in cpu_report.sites]
    assert any(s.folded for s in report.sites)
    # and the whole of fuse_implicit (fold, then strip what folded)
    folded = fuse_implicit(to_fuse.to('meta'), logger='silent')
    assert all(p.device.type == 'meta' for p in folded.parameters())
    with torch.no_grad():
        assert shapes(network(folded, data)) == shapes(unfolded)
        assert shapes(network(model, data)) == shapes(unfolded)


def test_train_step_runs_on_meta_up_to_the_loss(name):
    """Train-mode forward, backward and an SGD update on meta; the loss
    itself is mmdet's and stops (test_mmdet_stops_the_loss_on_meta), so the
    backward runs from the sum of the head outputs."""
    model = build(name, 'yolor').train()
    data = meta_batch(model, name)
    model.to('meta')
    outputs = network(model, data)
    sum(t.float().sum() for t in outputs).backward()
    implicits = {n: p for n, p in model.named_parameters() if '.implicit' in n}
    assert implicits
    for n, p in implicits.items():
        assert p.grad is not None and p.grad.device.type == 'meta', n
        assert p.grad.shape == p.shape, n
    # mmengine's OptimWrapper would clip with float(norm) (an .item()): a
    # plain optimizer's update is what runs on meta
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    optimizer.step()
    assert all(p.device.type == 'meta' for p in model.parameters())
    assert all(optimizer.state[p]['momentum_buffer'].device.type == 'meta'
               for p in implicits.values())


@pytest.mark.parametrize('form', FORMS)
def test_mmdet_stops_the_loss_on_meta(name, form):
    model = build(name, form).train()
    data = meta_batch(model, name)
    model.to('meta')
    # a target computation of mmdet's needs values: nonzero() raises
    # NotImplementedError, .item() a RuntimeError on torch 2.13 (torch 2.1
    # has no meta kernel for it: NotImplementedError)
    with pytest.raises((RuntimeError, NotImplementedError)) as error:
        model(**data, mode='loss')
    frames = [(frame.filename, frame.name)
              for frame in traceback.extract_tb(error.value.__traceback__)
              if '/mmdet/' in frame.filename]
    filename, function = LOSS_STOPS[name]
    assert frames[-1][0].endswith(filename) and frames[-1][1] == function, \
        frames[-3:]
