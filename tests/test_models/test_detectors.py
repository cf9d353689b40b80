# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Every seed-table detector in its YOLOR form: loss and predict on CPU,
warm start from a baseline checkpoint, identity init equals the baseline."""
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.hub import get_config as get_mmdet_config

from mmdet_yolor import yolorize
from mmdet_yolor.package_data import SEED_CONFIGS, get_config
from mmdet_yolor.stack_api import tree_leaves

from yolor_testing import shrink_backbone

IMAGE_SHAPES = [(3, 96, 128), (3, 128, 96)]


def build(config, **yolorize_kwargs):
    cfg = get_config(config)
    if yolorize_kwargs:
        cfg = yolorize(cfg, **yolorize_kwargs)
    torch.manual_seed(0)
    model = MODELS.build(shrink_backbone(cfg.model))
    model.init_weights()
    return model


def batch(model, num_items, with_mask):
    packed = demo_mm_inputs(
        batch_size=2,
        image_shapes=IMAGE_SHAPES,
        num_items=num_items,
        num_classes=80,
        with_mask=with_mask)
    return model.data_preprocessor(packed, True)


def has_masks(config):
    return config.startswith('mask_rcnn')


@pytest.mark.parametrize('baseline,yolor', SEED_CONFIGS)
# one image without and one with objects, and a batch without any
@pytest.mark.parametrize('num_items', [[0, 4], [0, 0]])
def test_yolor_loss_and_predict(baseline, yolor, num_items):
    model = build(yolor)
    assert type(model.neck).__name__ == 'YOLORFPN'
    data = batch(model, num_items, has_masks(yolor))
    model.train()
    losses = model(**data, mode='loss')
    total = sum(leaf.sum() for key, value in losses.items() if 'loss' in key
                for leaf in tree_leaves(value))
    assert torch.isfinite(total)
    total.backward()
    grads = [
        p.grad for name, p in model.named_parameters()
        if '.implicit_' in name and p.grad is not None
    ]
    assert grads and any(g.abs().sum() > 0 for g in grads)

    model.eval()
    with torch.no_grad():
        results = model(**data, mode='predict')
    assert len(results) == 2
    for result in results:
        assert result.pred_instances.bboxes.shape[1] == 4
        if has_masks(yolor):
            assert 'masks' in result.pred_instances


@pytest.mark.parametrize('baseline,yolor', SEED_CONFIGS)
def test_baseline_checkpoint_warm_starts_yolor(baseline, yolor):
    plain = build(baseline)
    model = build(yolor)
    missing, unexpected = model.load_state_dict(
        plain.state_dict(), strict=False)
    assert not unexpected
    assert missing and all('.implicit_' in key for key in missing)
    assert sorted(missing) == sorted(key for key in model.state_dict()
                                     if '.implicit_' in key)


@pytest.mark.parametrize('baseline,yolor', SEED_CONFIGS)
def test_identity_init_equals_baseline(baseline, yolor):
    plain = build(baseline).eval()
    model = build(baseline, implicit_cfg=dict(init='identity')).eval()
    model.load_state_dict(plain.state_dict(), strict=False)
    data = batch(plain, [3, 2], has_masks(baseline))
    with torch.no_grad():
        expected = plain(**data, mode='tensor')
        actual = model(**data, mode='tensor')
        expected_results = plain(**data, mode='predict')
        actual_results = model(**data, mode='predict')
    assert len(tree_leaves(expected)) == len(tree_leaves(actual)) > 0
    for e, a in zip(tree_leaves(expected), tree_leaves(actual)):
        assert torch.equal(e, a)
    for e, a in zip(expected_results, actual_results):
        assert torch.equal(e.pred_instances.bboxes, a.pred_instances.bboxes)
        assert torch.equal(e.pred_instances.scores, a.pred_instances.scores)

    plain.train()
    model.train()
    data = batch(plain, [3, 2], has_masks(baseline))
    torch.manual_seed(1)
    expected_losses = plain(**data, mode='loss')
    torch.manual_seed(1)
    actual_losses = model(**data, mode='loss')
    for key, value in expected_losses.items():
        for e, a in zip(tree_leaves(value), tree_leaves(actual_losses[key])):
            assert torch.equal(e, a), key


def test_retinanet_heads_are_supported_too():
    cfg = yolorize(
        get_mmdet_config('mmdet::retinanet/'
                         'retinanet_r50_fpn_1x_coco.py'))
    model = MODELS.build(shrink_backbone(cfg.model))
    data = batch(model, [2, 1], False)
    losses = model(**data, mode='loss')
    assert torch.isfinite(sum(leaf.sum() for leaf in tree_leaves(losses)))
    assert len(model.bbox_head.retina_cls.implicit_m) == 5
