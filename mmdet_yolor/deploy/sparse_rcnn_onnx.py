# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Export Sparse R-CNN for ONNX Runtime with ``torch.onnx`` directly, as
mmdeploy 1.3.1 cannot (:data:`MMDEPLOY_FAILURE`).

The graph (:class:`SparseRCNNEnd2End`) takes the preprocessed image batch
``input`` (B, 3, H, W), any H and W, and computes what mmdet's
``SparseRCNN.predict`` computes, calling mmdet's modules: the backbone and
neck, the learned proposals of ``rpn_head`` scaled to the image, each stage
of ``roi_head`` (RoIAlign of the stage's boxes, its ``DIIHead``, the head's
box coder on its deltas) and the top ``max_per_img`` of the last stage's
class scores over proposals x classes (``SparseRoIHead.predict_bbox``). It
returns mmdeploy's outputs, ``dets`` (B, K, 5: x1, y1, x2, y2, score) and
``labels`` (B, K), in the network input's coordinates: as for mmdeploy's
exports, rescaling to the original image is left to the caller (mmdeploy's
backend model divides by the scale factor). Sparse R-CNN needs no NMS.

Like mmdeploy's exports, the graph takes the image shape to be the input's,
padding included (the pipeline's ``img_shape`` is not an input): the learned
proposals, relative to the image, are scaled to the padded input. Where the
test pipeline pads (``pad_size_divisor``), mmdet's own ``predict`` scales
them to the unpadded image instead; :func:`mmdet_outputs`, the reference
the export is checked against, is mmdet's ``predict`` with the image shape
set to the input's.

mmdet's Python-level glue around those modules is not traceable as it is:
the lists of ``InstanceData`` per image, ``bbox2roi`` over them and
``refine_bboxes`` would freeze the batch size, the image size enters as
Python numbers from the image metas, and ``SingleRoIExtractor`` pools a
pyramid level behind a Python ``if`` on its number of RoIs, which tracing
would freeze for every other input. The small functions here do the same on
batch tensors. mmcv's own ONNX symbolic of RoIAlign shifts the RoIs by half
a pixel and then, at opset 16, gets ONNX's half-pixel coordinates too: the
graph's RoIAlign (:class:`RoIAlignHalfPixel`) uses ONNX's coordinate
modes, as mmdeploy's symbolic does at opset 16.
"""
import copy
import os
import os.path as osp
from typing import Sequence, Tuple

import numpy as np
import torch
from mmcv.ops import RoIAlign
from mmcv.ops.roi_align import RoIAlignFunction
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.config import Config
from torch import Tensor, nn
from torch.onnx.operators import shape_as_tensor

from ..stack_api import onnx_torchscript_exporter
from .tracing import DeployError, TracedRun, preprocess

DETECTOR = 'SparseRCNN'
# Where mmdeploy 1.3.1's export of Sparse R-CNN fails (run with
# mmdet_yolor.deploy.onnx_export.export_onnx on the demo config, 30
# proposals).
MMDEPLOY_FAILURE = (
    "mmdeploy 1.3.1 has no rewrite of SparseRoIHead, and its delta2bbox "
    "rewrite (mmdeploy/codebase/mmdet/models/task_modules/coders/"
    "delta_xywh_bbox_coder.py:137) takes the (N, 4) boxes of mmdet's "
    "per-image refine_bboxes for batched (B, N, 4) ones: RuntimeError: "
    "shape '[30, 4]' is invalid for input of size 240")


class RoIAlignHalfPixel(RoIAlignFunction):
    """mmcv's RoIAlign (its forward and backward), exported as ONNX's
    ``RoiAlign`` of opset 16 with mmcv's semantics.

    mmcv's aligned RoIAlign samples half-pixel coordinates and pools RoIs of
    any size, which is ONNX's ``half_pixel`` mode; its unaligned one
    enlarges RoIs to at least one pixel, ONNX's ``output_half_pixel`` mode.
    """

    @staticmethod
    def symbolic(g, input, rois, output_size, spatial_scale, sampling_ratio,
                 pool_mode, aligned):
        from torch.onnx import TensorProtoDataType
        batch_indices = g.op(
            'Cast',
            g.op(
                'Gather',
                rois,
                g.op('Constant', value_t=torch.tensor(0)),
                axis_i=1),
            to_i=TensorProtoDataType.INT64)
        boxes = g.op(
            'Gather',
            rois,
            g.op('Constant', value_t=torch.tensor([1, 2, 3, 4])),
            axis_i=1)
        return g.op(
            'RoiAlign',
            input,
            boxes,
            batch_indices,
            coordinate_transformation_mode_s='half_pixel'
            if aligned else 'output_half_pixel',
            mode_s=pool_mode,
            output_height_i=output_size[0],
            output_width_i=output_size[1],
            spatial_scale_f=spatial_scale,
            sampling_ratio_i=max(0, sampling_ratio))


def roi_align(layer: RoIAlign, feats: Tensor, rois: Tensor) -> Tensor:
    """``layer(feats, rois)``, exported by :class:`RoIAlignHalfPixel`.

    Args:
        layer (RoIAlign): mmcv's RoIAlign, whose settings are used.
        feats (Tensor): (B, C, H, W) features of one level.
        rois (Tensor): (R, 5) RoIs: image index, x1, y1, x2, y2.

    Returns:
        Tensor: (R, C, h, w) pooled features, (h, w) the layer's
        ``output_size``.
    """
    return RoIAlignHalfPixel.apply(feats, rois, layer.output_size,
                                   layer.spatial_scale, layer.sampling_ratio,
                                   layer.pool_mode, layer.aligned)


def extract_roi_features(extractor: nn.Module, feats: Sequence[Tensor],
                         rois: Tensor) -> Tensor:
    """What ``SingleRoIExtractor.forward`` computes, traceably: every level
    pools every RoI and each RoI keeps its own level's features.

    mmdet's extractor pools each level's RoIs only, behind a Python ``if`` on
    their number; a trace would keep the levels the traced input happened to
    use. Pooling all RoIs on every level costs ``len(feats)`` RoIAligns of
    ``R`` RoIs a stage, little beside the backbone.

    Args:
        extractor (SingleRoIExtractor): The stage's extractor; its
            ``map_roi_levels`` assigns the levels.
        feats (Sequence[Tensor]): Its input levels, each (B, C, H_l, W_l).
        rois (Tensor): (R, 5) RoIs: image index, x1, y1, x2, y2.

    Returns:
        Tensor: (R, C, h, w) RoI features.
    """
    rois = rois.type_as(feats[0])
    layers = extractor.roi_layers
    roi_feats = roi_align(layers[0], feats[0], rois)
    if len(feats) == 1:
        return roi_feats
    levels = extractor.map_roi_levels(rois, len(feats))[:, None, None, None]
    for level in range(1, len(feats)):
        roi_feats = torch.where(levels == level,
                                roi_align(layers[level], feats[level], rois),
                                roi_feats)
    return roi_feats


def image_whwh(img_shape: Tensor) -> Tensor:
    """(4,) width, height, width, height of an image from its (2,) height and
    width."""
    return img_shape.flip(0).repeat(2)


def initial_proposals(rpn_head: nn.Module, batch_size: int,
                      img_shape: Tensor) -> Tuple[Tensor, Tensor]:
    """The learned proposals of ``EmbeddingRPNHead`` for a batch, as its
    ``predict`` makes them, with the image size a tensor (mmdet's reads
    Python numbers from the image metas, which a trace would freeze).

    Args:
        rpn_head (EmbeddingRPNHead): The detector's proposal embeddings.
        batch_size (int): B.
        img_shape (Tensor): (2,) image height and width.

    Returns:
        tuple[Tensor, Tensor]: Boxes (B, N, 4) x1, y1, x2, y2 in pixels and
        proposal features (B, N, C).
    """
    boxes = bbox_cxcywh_to_xyxy(rpn_head.init_proposal_bboxes.weight)
    boxes = boxes * image_whwh(img_shape).to(boxes)
    features = rpn_head.init_proposal_features.weight
    shape = (batch_size, -1, -1)
    return boxes.expand(shape), features.expand(shape)


def boxes_to_rois(boxes: Tensor) -> Tensor:
    """``bbox2roi`` of a batch tensor (mmdet's takes a list of images).

    Args:
        boxes (Tensor): (B, N, 4) boxes of each image.

    Returns:
        Tensor: (B * N, 5) RoIs: image index, x1, y1, x2, y2.
    """
    image_index = torch.arange(boxes.size(0)).to(boxes)
    image_index = image_index[:, None, None].expand(-1, boxes.size(1), 1)
    return torch.cat([image_index, boxes], dim=-1).flatten(0, 1)


def refine_boxes(bbox_head: nn.Module, boxes: Tensor, deltas: Tensor,
                 img_shape: Tensor) -> Tensor:
    """The boxes ``BBoxHead.refine_bboxes`` gives the next stage, on batch
    tensors (mmdet's splits the RoIs per image into lists).

    ``DIIHead`` regresses class-agnostic deltas, so the head's box coder
    decodes them directly; its ``clip_border`` (mmdet's Sparse R-CNN configs
    set False) clips to ``img_shape``, a tensor, where mmdet's coder would
    clip to Python numbers.

    Args:
        bbox_head (DIIHead): The stage's head.
        boxes (Tensor): (B, N, 4) boxes the stage pooled.
        deltas (Tensor): (B, N, 4) its box deltas.
        img_shape (Tensor): (2,) image height and width.

    Returns:
        Tensor: (B, N, 4) refined boxes.
    """
    coder = bbox_head.bbox_coder
    refined = coder.decode(boxes.flatten(0, 1), deltas.flatten(0, 1))
    refined = refined.reshape(boxes.shape)
    if coder.clip_border:
        refined = torch.max(
            torch.min(refined,
                      image_whwh(img_shape).to(refined)), refined.new_zeros(4))
    return refined


def top_detections(bbox_head: nn.Module, cls_score: Tensor, boxes: Tensor,
                   max_per_img: int) -> Tuple[Tensor, Tensor]:
    """The detections of ``SparseRoIHead.predict_bbox``: the top
    ``max_per_img`` class scores of the last stage over all proposals and
    classes, with their proposal's box, on batch tensors.

    Args:
        bbox_head (DIIHead): The last stage's head.
        cls_score (Tensor): (B, N, C) its class logits (C + 1 with a
            background class, under softmax).
        boxes (Tensor): (B, N, 4) its refined boxes.
        max_per_img (int): Detections per image, K.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` (B, K, 5): x1, y1, x2, y2, score,
        best first, and ``labels`` (B, K).
    """
    if bbox_head.loss_cls.use_sigmoid:
        scores = cls_score.sigmoid()
    else:
        scores = cls_score.softmax(-1)[..., :-1]
    num_classes = scores.size(-1)
    scores, indices = scores.flatten(1).topk(max_per_img, dim=1)
    labels = indices % num_classes
    proposal = torch.div(indices, num_classes, rounding_mode='floor')
    boxes = boxes.gather(1, proposal[..., None].expand(-1, -1, 4))
    return torch.cat([boxes, scores[..., None]], dim=-1), labels


class SparseRCNNEnd2End(nn.Module):
    """Sparse R-CNN inference from the preprocessed images to detections,
    traceable by ``torch.onnx.export`` (see the module docstring).

    Args:
        detector (SparseRCNN): The detector, in eval mode (folded, for a
            YOLOR model); its modules are used, not copied.
    """

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        extractors = detector.roi_head.bbox_roi_extractor
        for stage, extractor in enumerate(extractors):
            if not all(
                    isinstance(layer, RoIAlign) and not layer.use_torchvision
                    for layer in extractor.roi_layers):
                raise DeployError(
                    f'roi_head.bbox_roi_extractor.{stage} pools with '
                    f'{type(extractor.roi_layers[0]).__name__}: the '
                    f"torch.onnx export of Sparse R-CNN takes mmcv's "
                    f"RoIAlign; set roi_layer=dict(type='RoIAlign', ...)")
        self.detector = detector
        self.max_per_img = detector.roi_head.test_cfg.max_per_img

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor]:
        """Detect.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images.

        Returns:
            tuple[Tensor, Tensor]: ``dets`` (B, K, 5) and ``labels`` (B, K),
            K = ``max_per_img``, in input coordinates.
        """
        # a tensor, so that the trace keeps the image size an input
        img_shape = shape_as_tensor(inputs)[2:]
        feats = self.detector.extract_feat(inputs)
        roi_head = self.detector.roi_head
        boxes, object_feats = initial_proposals(self.detector.rpn_head,
                                                inputs.size(0), img_shape)
        for stage in range(roi_head.num_stages):
            extractor = roi_head.bbox_roi_extractor[stage]
            bbox_head = roi_head.bbox_head[stage]
            roi_feats = extract_roi_features(extractor,
                                             feats[:extractor.num_inputs],
                                             boxes_to_rois(boxes))
            cls_score, deltas, object_feats, _ = bbox_head(
                roi_feats, object_feats)
            boxes = refine_boxes(bbox_head, boxes, deltas, img_shape)
        return top_detections(bbox_head, cls_score, boxes, self.max_per_img)


@torch.no_grad()
def mmdet_outputs(model: nn.Module, inputs: Tensor,
                  data_samples: list) -> Tuple[Tensor, Tensor]:
    """mmdet's own ``predict`` of Sparse R-CNN on ``inputs``, in the graph's
    outputs: the reference the export is checked against.

    The image shape is set to the input's, as the graph takes it (see the
    module docstring); boxes stay in input coordinates.

    Args:
        model (SparseRCNN): The detector, in eval mode.
        inputs (Tensor): (1, 3, H, W) preprocessed image.
        data_samples (list): Its data samples; not modified.

    Returns:
        tuple[Tensor, Tensor]: ``dets`` (1, K, 5) and ``labels`` (1, K).
    """
    samples = copy.deepcopy(data_samples)
    for sample in samples:
        sample.set_metainfo(dict(img_shape=tuple(inputs.shape[2:])))
    detections = model.predict(inputs, samples, rescale=False)[0]
    detections = detections.pred_instances
    dets = torch.cat([detections.bboxes, detections.scores[:, None]], dim=-1)
    return dets[None], detections.labels[None]


def export_sparse_rcnn(model: nn.Module, model_cfg: Config, deploy_cfg: Config,
                       image: np.ndarray, onnx_file: str) -> TracedRun:
    """Export Sparse R-CNN with ``torch.onnx.export`` (TorchScript
    exporter) to the graph of :class:`SparseRCNNEnd2End`, with the input
    and output names, dynamic axes and opset of ``deploy_cfg``.

    Args:
        model (SparseRCNN): The detector, in eval mode; not modified.
        model_cfg (Config): Its config (pipeline, preprocessing).
        deploy_cfg (Config): The mmdeploy deploy config the export is
            recorded with.
        image (np.ndarray): (H, W, 3) BGR uint8 image to trace with; the
            graph takes any image size.
        onnx_file (str): Where to write the graph.

    Returns:
        TracedRun: The input traced and mmdet's outputs on it
        (:func:`mmdet_outputs`).
    """
    inputs, data_samples = preprocess(model, model_cfg, deploy_cfg, image)
    onnx_cfg = deploy_cfg.onnx_config
    os.makedirs(osp.dirname(osp.abspath(onnx_file)), exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            SparseRCNNEnd2End(model).eval(), (inputs, ),
            onnx_file,
            **onnx_torchscript_exporter(),
            opset_version=onnx_cfg.opset_version,
            input_names=onnx_cfg.input_names,
            output_names=onnx_cfg.output_names,
            dynamic_axes=onnx_cfg.dynamic_axes,
            keep_initializers_as_inputs=onnx_cfg.keep_initializers_as_inputs)
    return TracedRun(inputs, data_samples,
                     mmdet_outputs(model, inputs, data_samples))
