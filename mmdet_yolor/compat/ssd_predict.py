# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``ssd_predict``: SSD configs validate and predict.

mmdet 3.3.0's ``BaseDenseHead._predict_by_feat_single`` reads
``self.loss_cls``, which ``SSDHead`` never sets (it computes its loss
itself), so every SSD config fails at validation and inference with
``'SSDHead' object has no attribute 'loss_cls'``
(open-mmlab/mmdetection#11305, #11780). The fix gives ``SSDHead`` a class
attribute ``loss_cls = None``, read only where stock mmdet raised; an
instance attribute, should a subclass set one, still takes precedence.
"""
from mmdet.models.dense_heads import SSDHead
from mmdet.models.dense_heads.base_dense_head import BaseDenseHead

from .registry import Fix


def ssd_lacks_what_prediction_reads() -> bool:
    """Whether the shared prediction code reads ``loss_cls``, which
    ``SSDHead`` lacks."""
    reads = BaseDenseHead._predict_by_feat_single.__code__.co_names
    return 'loss_cls' in reads and not hasattr(SSDHead, 'loss_cls')


def let_ssd_predict() -> None:
    SSDHead.loss_cls = None


FIX = Fix(
    name='ssd_predict',
    defect="mmdet's dense-head prediction reads loss_cls, which SSDHead "
    'never sets',
    probe=ssd_lacks_what_prediction_reads,
    apply=let_ssd_predict)
