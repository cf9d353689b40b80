# Copyright (c) mmdet_yolor contributors. All rights reserved.
import numpy as np
import torch
from mmdet.models.data_preprocessors import (DetDataPreprocessor,
                                             MultiBranchDataPreprocessor)
from mmengine.config import Config
from torch import nn

from mmdet_yolor.analysis.config_check import inputs
from mmdet_yolor.analysis.config_check.inputs import InputSpec
from mmdet_yolor.analysis.config_check.settings import SweepSettings

SETTINGS = SweepSettings(image_size=96, objects=4)


def pipeline_config(*pipeline, **model):
    return Config(
        dict(
            model=model,
            train_dataloader=dict(dataset=dict(pipeline=list(pipeline)))))


def detector(preprocessor=None):
    model = nn.Module()
    model.data_preprocessor = preprocessor or DetDataPreprocessor()
    return model


def test_images_alternate_landscape_and_portrait():
    assert SweepSettings().image_shapes() == [(336, 448), (448, 336)]
    assert SweepSettings(
        image_size=100, batch_size=3).image_shapes() == [(72, 100), (100, 72),
                                                         (72, 100)]
    assert inputs.image_shapes(pipeline_config(), SETTINGS) == \
        SETTINGS.image_shapes()


def test_fixed_size_resize_sets_the_image_shapes():
    # SSD's heads assume the (width, height) its pipeline resizes to
    fixed = pipeline_config(
        dict(type='Resize', scale=(320, 256), keep_ratio=False))
    assert inputs.image_shapes(fixed, SETTINGS) == [(256, 320), (256, 320)]
    kept = pipeline_config(
        dict(type='Resize', scale=(320, 256), keep_ratio=True))
    assert inputs.image_shapes(kept, SETTINGS) == SETTINGS.image_shapes()


def test_input_spec_follows_the_loading_transforms():
    boxes = pipeline_config(
        dict(type='LoadAnnotations', with_bbox=True),
        bbox_head=dict(num_classes=20),
        roi_head=dict(mask_head=dict(num_classes=30)))
    assert inputs.input_spec(boxes, detector()) == InputSpec(20)

    masks = pipeline_config(
        dict(type='LoadAnnotations', with_mask=True),
        dict(type='LoadProposals'),
        bbox_head=dict(num_classes=5))
    assert inputs.input_spec(masks, detector()) == InputSpec(
        5, masks=True, proposals=True)

    # panoptic: stuff regions take the labels after the things'
    panoptic = pipeline_config(
        dict(type='LoadPanopticAnnotations'),
        panoptic_head=dict(num_things_classes=80, num_stuff_classes=53))
    assert inputs.input_spec(panoptic, detector()) == InputSpec(
        80, masks=True, semantic=(80, 133))

    # a semantic head without stuff classes: its classes beyond the boxes'
    semantic = pipeline_config(
        dict(type='LoadAnnotations', with_seg=True),
        bbox_head=dict(num_classes=4),
        semantic_head=dict(num_classes=7))
    assert inputs.input_spec(semantic, detector()).semantic == (4, 7)


def test_semi_supervised_models_get_branches():
    preprocessor = MultiBranchDataPreprocessor(
        dict(type='DetDataPreprocessor'))
    spec = inputs.input_spec(pipeline_config(), detector(preprocessor))
    assert spec == InputSpec(1, branches=inputs.SEMI_BRANCHES)


def test_generated_samples_are_a_collated_batch():
    spec = InputSpec(3, masks=True, semantic=(3, 5), proposals=True)
    shapes = SETTINGS.image_shapes()
    batch = inputs.generate_samples(spec, shapes, SETTINGS)
    assert len(batch['inputs']) == len(batch['data_samples']) == 2
    for index, (image, sample, (height, width)) in enumerate(
            zip(batch['inputs'], batch['data_samples'], shapes)):
        assert image.dtype == torch.uint8
        assert image.shape == (3, height, width)
        assert sample.img_shape == sample.ori_shape == (height, width)
        gt = sample.gt_instances
        # fewer objects in each later image
        assert len(gt) == SETTINGS.objects - 2 * index
        boxes = gt.bboxes.tensor
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] >
                                              boxes[:, :2]).all()
        assert (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
        assert ((gt.labels >= 0) & (gt.labels < 3)).all()
        assert gt.masks.masks.shape == (len(gt), height, width)
        assert gt.masks.masks.any((1, 2)).all()
        assert len(sample.ignored_instances) == 0
        # objects keep their labels in the semantic map, the background
        # takes the stuff labels
        sem_seg = sample.gt_sem_seg.sem_seg
        assert sem_seg.shape == (1, height, width)
        assert set(sem_seg.unique().tolist()) <= {0, 1, 2, 3, 4}
        assert len(sample.proposals) == 50 * len(gt) + 150
        assert (sample.proposals.bboxes[:, 2:] <= torch.tensor([width, height
                                                                ])).all()


def test_generated_samples_depend_on_the_seed_only():
    spec, shapes = InputSpec(2), SETTINGS.image_shapes()
    first = inputs.generate_samples(spec, shapes, SETTINGS)
    again = inputs.generate_samples(spec, shapes, SETTINGS)
    other = inputs.generate_samples(spec, shapes,
                                    SweepSettings(image_size=96, seed=1))
    assert torch.equal(first['inputs'][0], again['inputs'][0])
    assert not torch.equal(first['inputs'][0], other['inputs'][0])
    # without masks asked for, none are given
    assert 'masks' not in first['data_samples'][0].gt_instances


def test_branches_share_the_images_and_eval_takes_the_supervised_one():
    spec = InputSpec(2, branches=inputs.SEMI_BRANCHES)
    batch = inputs.generate_samples(spec, SETTINGS.image_shapes(), SETTINGS)
    assert set(batch['inputs']) == set(inputs.SEMI_BRANCHES)
    samples = batch['data_samples']
    assert samples['sup'][0] is not samples['unsup_student'][0]
    assert np.array_equal(samples['sup'][0].homography_matrix, np.eye(3))
    evaluated = inputs.eval_batch(batch)
    assert evaluated['inputs'] is batch['inputs']['sup']
    plain = inputs.generate_samples(
        InputSpec(2), SETTINGS.image_shapes(), SETTINGS)
    assert inputs.eval_batch(plain) is plain
