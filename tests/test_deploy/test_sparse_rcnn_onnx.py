# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The traceable parts of Sparse R-CNN's torch.onnx graph against mmdet's
own modules, on batch tensors; no export (the exports are in
tests/test_deploy/test_onnx_export.py)."""
from types import SimpleNamespace

import pytest
import torch
from mmcv.ops import RoIAlign
from mmdet.models.dense_heads import EmbeddingRPNHead
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi

from mmdet_yolor.deploy import sparse_rcnn_onnx as graph
from mmdet_yolor.deploy.onnx_export import deploy_config, deploy_model_config
from mmdet_yolor.deploy.tracing import DeployError, preprocess
from mmdet_yolor.package_data import get_config
from yolor_dev.shapes_images import generated_images

from yolor_testing import spread_sparse_rcnn

SPARSE_RCNN = 'demo/sparse-rcnn_r18_fpn_6e_shapes.py'
NUM_PROPOSALS = 20  # fewer than the demo's 30, for speed


def random_boxes(count, size, generator):
    """(count, 4) x1, y1, x2, y2 boxes of 2 to ``size`` pixels inside a
    ``size`` square."""
    xy = torch.rand(count, 2, generator=generator) * size * 0.5
    wh = 2 + torch.rand(count, 2, generator=generator) * size * 0.5
    return torch.cat([xy, xy + wh], dim=1)


def test_image_whwh_repeats_width_and_height():
    assert graph.image_whwh(torch.tensor([30,
                                          40])).tolist() == [40, 30, 40, 30]


def test_boxes_to_rois_is_bbox2roi_of_a_batch_tensor():
    generator = torch.Generator().manual_seed(0)
    boxes = torch.stack([random_boxes(3, 64, generator) for _ in range(2)])
    rois = graph.boxes_to_rois(boxes)
    assert rois.shape == (6, 5)
    assert rois[:, 0].tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(rois, bbox2roi(list(boxes)))


def test_initial_proposals_are_the_rpn_heads_for_an_image_size():
    torch.manual_seed(0)
    rpn_head = EmbeddingRPNHead(num_proposals=5, proposal_feature_channel=8)
    rpn_head.init_weights()
    with torch.no_grad():  # proposals away from the whole image
        rpn_head.init_proposal_bboxes.weight.uniform_(0.2, 0.6)
    sample = DetDataSample(metainfo=dict(img_shape=(48, 64)))
    expected = rpn_head.predict([torch.zeros(2, 8, 12, 16)], [sample] * 2)
    boxes, features = graph.initial_proposals(rpn_head, 2,
                                              torch.tensor([48, 64]))
    assert boxes.shape == (2, 5, 4) and features.shape == (2, 5, 8)
    for image in range(2):
        torch.testing.assert_close(boxes[image], expected[image].bboxes)
        torch.testing.assert_close(features[image], expected[image].features)


@pytest.mark.parametrize('clip_border', [False, True])
def test_refined_boxes_are_the_coders_decoded_boxes(clip_border):
    generator = torch.Generator().manual_seed(0)
    coder = DeltaXYWHBBoxCoder(
        target_stds=[0.5, 0.5, 1., 1.], clip_border=clip_border)
    boxes = random_boxes(6, 40, generator).view(2, 3, 4)
    deltas = torch.randn(2, 3, 4, generator=generator)
    refined = graph.refine_boxes(
        SimpleNamespace(bbox_coder=coder), boxes, deltas,
        torch.tensor([40, 50]))
    expected = coder.decode(
        boxes.flatten(0, 1),
        deltas.flatten(0, 1),
        max_shape=(40, 50) if clip_border else None).view(2, 3, 4)
    torch.testing.assert_close(refined, expected)
    inside = (refined >= 0).all() and (refined[..., 0::2] <= 50).all() and (
        refined[..., 1::2] <= 40).all()
    assert bool(inside) == clip_border


@pytest.mark.parametrize('use_sigmoid', [False, True])
def test_top_detections_take_the_best_scores_over_proposals_and_classes(
        use_sigmoid):
    generator = torch.Generator().manual_seed(0)
    classes = 3
    logits = torch.randn(
        1, 4, classes + (not use_sigmoid), generator=generator)
    boxes = random_boxes(4, 32, generator)[None]
    head = SimpleNamespace(loss_cls=SimpleNamespace(use_sigmoid=use_sigmoid))
    dets, labels = graph.top_detections(head, logits, boxes, max_per_img=5)
    scores = logits.sigmoid() if use_sigmoid else logits.softmax(-1)[..., :-1]
    ranked = sorted(((scores[0, p, c].item(), p, c) for p in range(4)
                     for c in range(classes)),
                    reverse=True)[:5]
    assert dets.shape == (1, 5, 5) and labels.shape == (1, 5)
    torch.testing.assert_close(dets[0, :, 4],
                               torch.tensor([s for s, _, _ in ranked]))
    assert labels[0].tolist() == [c for _, _, c in ranked]
    for k, (_, proposal, _) in enumerate(ranked):
        assert torch.equal(dets[0, k, :4], boxes[0, proposal])


def test_roi_align_computes_mmcvs_roi_align():
    generator = torch.Generator().manual_seed(0)
    layer = RoIAlign(7, spatial_scale=0.25, sampling_ratio=2)
    feats = torch.randn(2, 4, 16, 16, generator=generator)
    rois = graph.boxes_to_rois(random_boxes(6, 64, generator).view(2, 3, 4))
    torch.testing.assert_close(
        graph.roi_align(layer, feats, rois), layer(feats, rois))


def test_roi_features_are_the_extractors_on_every_level():
    generator = torch.Generator().manual_seed(0)
    extractor = SingleRoIExtractor(
        roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2),
        out_channels=4,
        featmap_strides=[4, 8, 16, 32])
    feats = [
        torch.randn(2, 4, 128 // s, 128 // s, generator=generator)
        for s in (4, 8, 16, 32)
    ]
    # small and large boxes: RoIs on several levels
    boxes = torch.cat(
        [random_boxes(6, 40, generator),
         random_boxes(6, 256, generator) * 2]).view(2, 6, 4)
    rois = graph.boxes_to_rois(boxes)
    assert len(extractor.map_roi_levels(rois, 4).unique()) > 1
    torch.testing.assert_close(
        graph.extract_roi_features(extractor, feats, rois),
        extractor(feats, rois))
    # one level: its RoIAlign alone
    torch.testing.assert_close(
        graph.extract_roi_features(extractor, feats[:1], rois),
        graph.roi_align(extractor.roi_layers[0], feats[0], rois))


def test_sparse_rcnn_export_refuses_other_roi_layers():
    cfg = get_config(SPARSE_RCNN)
    cfg.model.roi_head.bbox_roi_extractor.roi_layer = dict(
        type='RoIPool', output_size=7)
    with pytest.raises(DeployError) as error:
        graph.SparseRCNNEnd2End(MODELS.build(cfg.model))
    assert '\n' not in str(error.value) and 'RoIPool' in str(error.value)


@pytest.mark.parametrize('clip_border', [False, True])
def test_sparse_rcnn_graph_computes_mmdet_predict(clip_border):
    cfg = get_config(SPARSE_RCNN)
    # a smaller network input than the demo's 192 px, for speed
    cfg.test_dataloader.dataset.pipeline[1].scale = (128, 128)
    cfg.model.rpn_head.num_proposals = NUM_PROPOSALS
    cfg = deploy_model_config(cfg)
    # every class score of every proposal: no top-k cut, no tie at it
    cfg.model.test_cfg.rcnn.max_per_img = NUM_PROPOSALS * 6
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    spread_sparse_rcnn(model)
    model.eval()
    for bbox_head in model.roi_head.bbox_head:
        bbox_head.bbox_coder.clip_border = clip_border
    image = generated_images([160], seed=1)[0]
    inputs, data_samples = preprocess(model, cfg, deploy_config(cfg), image)
    with torch.no_grad():
        dets, labels = graph.SparseRCNNEnd2End(model)(inputs)
    expected_dets, expected_labels = graph.mmdet_outputs(
        model, inputs, data_samples)
    order = expected_dets[0, :, 4].argsort(descending=True)
    torch.testing.assert_close(dets[0], expected_dets[0, order])
    assert torch.equal(labels[0], expected_labels[0, order])
    clipped = (dets[..., :4] >= 0).all() and (dets[..., :4] <= 128).all()
    assert bool(clipped) == clip_border


def test_on_a_padded_input_the_reference_takes_the_inputs_shape():
    # the graph scales the learned proposals to the padded input; so does
    # its reference, on a copy of the samples
    cfg = get_config(SPARSE_RCNN)
    cfg.test_dataloader.dataset.pipeline[1].scale = (128, 128)
    cfg.model.rpn_head.num_proposals = NUM_PROPOSALS
    cfg = deploy_model_config(cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    spread_sparse_rcnn(model)
    model.eval()
    image = generated_images([160], seed=1)[0][:, :96]
    inputs, data_samples = preprocess(model, cfg, deploy_config(cfg), image)
    assert data_samples[0].img_shape == (128, 77)
    assert tuple(inputs.shape[2:]) == (128, 96)
    with torch.no_grad():
        dets, labels = graph.SparseRCNNEnd2End(model)(inputs)
    expected_dets, expected_labels = graph.mmdet_outputs(
        model, inputs, data_samples)
    assert data_samples[0].img_shape == (128, 77)
    assert expected_dets.shape == (1, 30, 5) and expected_labels.shape == (1,
                                                                           30)
    # the best detections agree (mmdet's are unsorted; those at the
    # top-30 cut may swap)
    order = expected_dets[0, :, 4].argsort(descending=True)[:10]
    torch.testing.assert_close(dets[0, :10], expected_dets[0, order])
    assert torch.equal(labels[0, :10], expected_labels[0, order])
