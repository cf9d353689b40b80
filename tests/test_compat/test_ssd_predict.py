# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``ssd_predict``: SSD heads predict."""
import torch
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import ConfigDict

from mmdet_yolor.compat import applied_fixes
from mmdet_yolor.compat.ssd_predict import ssd_lacks_what_prediction_reads


def test_the_probe_finds_the_missing_attribute(monkeypatch):
    assert 'ssd_predict' in applied_fixes()
    assert not ssd_lacks_what_prediction_reads()  # repaired
    monkeypatch.delattr(SSDHead, 'loss_cls')
    assert ssd_lacks_what_prediction_reads()  # mmdet 3.3.0's defect


def test_ssd_predicts():
    """Stock mmdet 3.3.0 fails here with ``'SSDHead' object has no
    attribute 'loss_cls'`` (open-mmlab/mmdetection#11305)."""
    head = MODELS.build(
        dict(
            type='SSDHead',
            num_classes=3,
            in_channels=(8, 8, 8),
            stacked_convs=0,
            anchor_generator=dict(
                type='SSDAnchorGenerator',
                scale_major=False,
                input_size=64,
                min_sizes=[8, 16, 32],
                max_sizes=[16, 32, 64],
                strides=[8, 16, 32],
                ratios=[[2], [2], [2]]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            test_cfg=ConfigDict(
                nms_pre=100,
                nms=dict(type='nms', iou_threshold=0.45),
                min_bbox_size=0,
                score_thr=0.0,
                max_per_img=10)))
    torch.manual_seed(0)
    feats = tuple(torch.rand(1, 8, size, size) for size in (8, 4, 2))
    results = head.predict(
        feats, [DetDataSample(metainfo=dict(img_shape=(64, 64)))],
        rescale=False)
    assert len(results[0]) == 10
    assert head.loss_cls is None
