# Copyright (c) mmdet_yolor contributors. All rights reserved.
from mmdet.models.dense_heads import EmbeddingRPNHead
from torch import nn

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.config_check import heads
from mmdet_yolor.analysis.config_check.steps import build_model

from yolor_testing import tiny_fcos_config


class Head(nn.Module):
    """A head with a loss and a prediction conv."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def loss(self):
        pass


class FeatureHead(nn.Module):
    """A ``*_head`` that computes features: it has no loss."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)


def test_head_families_are_the_innermost_heads_with_a_loss_and_layers():
    model = nn.Module()
    model.roi_head = Head()
    model.roi_head.bbox_head = nn.ModuleList([Head(), Head()])
    model.roi_head.shared_head = FeatureHead()
    model.teacher_head = Head().requires_grad_(False)
    # Sparse R-CNN's learned proposals: the plugin's table says it predicts
    # nothing
    model.rpn_head = EmbeddingRPNHead(
        num_proposals=4, proposal_feature_channel=8)
    assert heads.head_families(model) == [
        'roi_head.bbox_head.0', 'roi_head.bbox_head.1'
    ]
    assert list(heads.heads_predicting_nothing(model)) == ['rpn_head']
    assert 'learned embeddings' in heads.heads_predicting_nothing(
        model)['rpn_head']


def test_family_of_a_module():
    families = ['bbox_head', 'roi_head.bbox_head.1']
    assert heads.family_of('bbox_head.conv_cls', families) == 'bbox_head'
    assert heads.family_of('roi_head.bbox_head.1.fc_cls',
                           families) == 'roi_head.bbox_head.1'
    # outside the families: up to the last *_head and its stage index
    assert heads.family_of('roi_head.mask_head.3.conv_logits',
                           families) == 'roi_head.mask_head.3'
    assert heads.family_of('roi_head.mask_head.conv_logits',
                           families) == 'roi_head.mask_head'
    assert heads.family_of('neck.fpn_convs.0', families) == 'neck'


def test_refined_layers_of_each_family():
    model = build_model(yolorize(tiny_fcos_config('data', 'work')), seed=0)
    families = heads.head_families(model)
    assert families == ['bbox_head']
    assert heads.refined_by_family(model, families) == {
        'bbox_head': [
            'bbox_head.conv_cls', 'bbox_head.conv_reg',
            'bbox_head.conv_centerness'
        ]
    }
    plain = build_model(tiny_fcos_config('data', 'work'), seed=0)
    assert heads.refined_by_family(plain, families) == {}
