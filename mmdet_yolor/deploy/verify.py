# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Check an ONNX Runtime export against the PyTorch model it came from.

Both run on the same preprocessed images (the config's test pipeline, as
mmdeploy's ``create_input`` applies it). The reference is the PyTorch model
under the same post-processing as the graph: mmdeploy's rewrites of the
heads (batched NMS over all levels of the RPN, clipping to the padded input,
the score threshold after score factors), run in PyTorch as mmdeploy's own
tests do; for Sparse R-CNN, which mmdeploy cannot export and
:mod:`.sparse_rcnn_onnx` exports with ``torch.onnx`` directly, mmdet's own
``predict`` (the graph's post-processing is mmdet's). Detections match one
to one when their labels agree, their boxes overlap with IoU >= 0.99 and
their scores differ by at most 1e-3; the
mask probabilities of matched pairs (pasted into the image) must agree
within 1e-3, and their binary masks' IoU is reported (an untrained mask
head predicts many pixels near the 0.5 threshold, where float noise flips
them). mmdet's own post-processing differs from
mmdeploy's in those details, so agreement with it is reported too, but not
required.
"""
import copy
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmdet.registry import DATASETS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config
from mmengine.structures import InstanceData
from torch import Tensor

from ..errors import InputError
from .onnx_export import BACKEND, ExportResult, final_test_cfg
from .sparse_rcnn_onnx import mmdet_outputs

MIN_BOX_IOU = 0.99
MAX_SCORE_DIFF = 1e-3
MAX_MASK_PROB_DIFF = 1e-3
MIN_MASK_IOU = 0.99
EMPTY_BOX_TOL = 0.01


def dataset_images(cfg: Config,
                   count: int = 3) -> List[Tuple[str, np.ndarray]]:
    """The first ``count`` images of the test dataset of ``cfg``: what an
    export is checked on unless the user names images.

    Returns:
        list[tuple]: ``(path, image)``, the image (H, W, 3) uint8 BGR as
        ``mmcv.imread`` reads it.

    Raises:
        InputError: If the dataset cannot be read or has no images.
    """
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    # the image paths only: no transforms, and no serialisation (mmengine's
    # fails on a dataset without images)
    dataset_cfg.update(pipeline=[], serialize_data=False)
    try:
        dataset = DATASETS.build(dataset_cfg)
    except (FileNotFoundError, OSError) as error:
        raise InputError(
            f'cannot read the test dataset of {cfg.filename} to check the '
            f'export on ({error}); name the images with --img') from None
    paths = [
        dataset.get_data_info(index)['img_path']
        for index in range(min(count, len(dataset)))
    ]
    if not paths:
        raise InputError(f'the test dataset of {cfg.filename} has no '
                         f'images; name the images with --img')
    return [(path, mmcv.imread(path)) for path in paths]


@dataclass
class DetectionParity:
    """How the detections of two models on one image agree.

    Attributes:
        score_thr (float): Detections scoring above it were compared.
        compared (int): Reference detections above ``score_thr``.
        matched (int): Of those, matched one to one.
        unmatched (int): Detections above ``score_thr`` on either side
            without a match.
        min_iou (float): Smallest box IoU of a matched pair (1 if none).
        max_score_diff (float): Largest score difference of a matched pair.
        min_mask_iou (float, optional): Smallest mask IoU of a matched pair;
            None without masks.
        max_mask_prob_diff (float, optional): Largest difference of the
            mask probabilities of a matched pair; None without them.
    """
    score_thr: float
    compared: int
    matched: int
    unmatched: int
    min_iou: float
    max_score_diff: float
    min_mask_iou: Optional[float] = None
    max_mask_prob_diff: Optional[float] = None

    @property
    def passed(self) -> bool:
        """Whether every detection matched within the tolerances: masks by
        their probabilities where both sides have them, else by IoU."""
        if self.max_mask_prob_diff is not None:
            masks_agree = self.max_mask_prob_diff <= MAX_MASK_PROB_DIFF
        else:
            masks_agree = self.min_mask_iou is None or \
                self.min_mask_iou >= MIN_MASK_IOU
        return (self.unmatched == 0 and self.min_iou >= MIN_BOX_IOU
                and self.max_score_diff <= MAX_SCORE_DIFF and masks_agree)

    def format(self) -> str:
        line = (f'{self.matched}/{self.compared} detections matched '
                f'(score > {self.score_thr:.3g}, {self.unmatched} unmatched), '
                f'min IoU {self.min_iou:.5f}, max score diff '
                f'{self.max_score_diff:.1e}')
        if self.max_mask_prob_diff is not None:
            line += f', max mask prob diff {self.max_mask_prob_diff:.1e}'
        if self.min_mask_iou is not None:
            line += f', min mask IoU {self.min_mask_iou:.4f}'
        return line


def _mask_iou(a: Tensor, b: Tensor) -> float:
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union


def box_agreement(boxes: Tensor, other: Tensor) -> Tensor:
    """The IoU of every pair of ``boxes`` (K, 4) and ``other`` (L, 4); for
    two empty boxes (a clipped box can have no width), whose IoU is
    undefined, 1 where their corners agree within :data:`EMPTY_BOX_TOL`
    pixels, else 0.

    Returns:
        Tensor: (K, L) agreement.
    """
    ious = bbox_overlaps(boxes, other)
    empty = ((boxes[:, 2:] - boxes[:, :2]).prod(-1) <= 0)[:, None] & (
        (other[:, 2:] - other[:, :2]).prod(-1) <= 0)[None, :]
    corners_agree = (boxes[:, None] -
                     other[None]).abs().amax(-1) <= EMPTY_BOX_TOL
    return torch.where(empty, corners_agree.to(ious), ious)


def _comparison_threshold(detections: InstanceData, score_thr: float,
                          max_per_img: Optional[int]) -> float:
    """``score_thr``, or the lowest kept score when the image kept
    ``max_per_img`` detections (below it, the last places were competed
    for)."""
    if max_per_img and len(detections) >= max_per_img:
        return max(score_thr, detections.scores.min().item())
    return score_thr


def match_detections(reference: InstanceData,
                     candidate: InstanceData,
                     score_thr: float,
                     max_per_img: Optional[int] = None) -> DetectionParity:
    """Match the detections of ``candidate`` one to one to ``reference``.

    Greedy, highest reference score first: each reference detection takes
    the unmatched candidate of its label with the largest box IoU
    (:func:`box_agreement`); the pair
    matches if that IoU is at least :data:`MIN_BOX_IOU` and the scores
    differ by at most :data:`MAX_SCORE_DIFF`. Detections within
    :data:`MAX_SCORE_DIFF` of the threshold may lack a partner (it may
    score on the other side of the threshold there).

    Args:
        reference, candidate (InstanceData): ``bboxes`` (K, 4), ``scores``
            (K,), ``labels`` (K,) and optionally ``masks`` (K, H, W) bool
            and ``mask_probs`` (K, H, W) float.
        score_thr (float): Compare the detections scoring above it.
        max_per_img (int, optional): Detections an image keeps at most.

    Returns:
        DetectionParity: The agreement.
    """
    thr = max(
        _comparison_threshold(reference, score_thr, max_per_img),
        _comparison_threshold(candidate, score_thr, max_per_img))
    with_masks = 'masks' in reference and 'masks' in candidate
    with_probs = 'mask_probs' in reference and 'mask_probs' in candidate
    ious = box_agreement(reference.bboxes, candidate.bboxes)
    same_label = reference.labels[:, None] == candidate.labels[None, :]
    ious = torch.where(same_label, ious, ious.new_tensor(-1.))
    taken = torch.zeros(len(candidate), dtype=torch.bool)
    compared = matched = unmatched = 0
    min_iou, max_score_diff, min_mask_iou, max_prob_diff = 1.0, 0.0, 1.0, 0.
    for i in reference.scores.argsort(descending=True).tolist():
        if reference.scores[i] <= thr:
            break
        compared += 1
        borderline = reference.scores[i] <= thr + MAX_SCORE_DIFF
        row = ious[i].masked_fill(taken, -1.)
        j = int(row.argmax()) if len(row) else -1
        score_diff = abs(reference.scores[i] -
                         candidate.scores[j]).item() if j >= 0 else 1.0
        if j < 0 or row[j] < MIN_BOX_IOU or score_diff > MAX_SCORE_DIFF:
            unmatched += not borderline
            continue
        taken[j] = True
        matched += 1
        min_iou = min(min_iou, row[j].item())
        max_score_diff = max(max_score_diff, score_diff)
        if with_masks:
            min_mask_iou = min(
                min_mask_iou,
                _mask_iou(reference.masks[i].bool(),
                          candidate.masks[j].bool()))
        if with_probs:
            max_prob_diff = max(max_prob_diff,
                                (reference.mask_probs[i] -
                                 candidate.mask_probs[j]).abs().max().item())
    unmatched += int(((candidate.scores > thr + MAX_SCORE_DIFF)
                      & ~taken).sum())
    return DetectionParity(thr, compared, matched, unmatched, min_iou,
                           max_score_diff,
                           min_mask_iou if with_masks else None,
                           max_prob_diff if with_probs else None)


@dataclass
class ImageCheck:
    """The checks of one image: ONNX Runtime against PyTorch under the
    graph's post-processing (required) and under mmdet's (reported)."""
    name: str
    parity: DetectionParity
    mmdet_parity: DetectionParity

    @property
    def passed(self) -> bool:
        return self.parity.passed

    def format(self) -> str:
        state = 'ok' if self.passed else 'FAILED'
        return (f'{self.name}: ONNX Runtime vs PyTorch: '
                f'{self.parity.format()} [{state}]\n'
                f'  vs mmdet post-processing (reported only): '
                f'{self.mmdet_parity.format()}')


def _as_tensors(instances: InstanceData) -> InstanceData:
    """Detections as CPU tensors, masks as bool."""
    result = InstanceData()
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        if key in instances:
            value = torch.as_tensor(instances.get(key)).cpu()
            result.set_field(value.bool() if key == 'masks' else value, key)
    return result


class ParityChecker:
    """Runs an export in ONNX Runtime (mmdeploy's backend model) and its
    PyTorch model on the same images, and compares their detections.

    Args:
        export (ExportResult): What :func:`export_checkpoint` wrote.
    """

    def __init__(self, export: ExportResult) -> None:
        from mmdeploy.apis.utils import build_task_processor
        from mmdeploy.codebase.mmdet.deploy.object_detection_model import \
            End2EndModel
        self.export = export
        self.deploy_cfg = export.deploy_cfg
        # how mmdeploy's backend model pastes RoI masks into the image
        self.paste_masks = End2EndModel.postprocessing_masks
        model_cfg = export.prepared.model_cfg
        self.model = export.prepared.model
        self.task_processor = build_task_processor(
            copy.deepcopy(model_cfg), self.deploy_cfg, 'cpu')
        self.backend_model = self.task_processor.build_backend_model(
            [export.onnx_file])
        test_cfg = final_test_cfg(model_cfg)
        self.score_thr = test_cfg.get('score_thr', 0.0)
        self.max_per_img = test_cfg.get('max_per_img')

    def inputs(self, image: np.ndarray):
        """The test pipeline and preprocessing applied to ``image``.

        Returns:
            tuple: (1, 3, H, W) input tensor and the data samples.
        """
        data, inputs = self.task_processor.create_input(
            image, None, data_preprocessor=self.model.data_preprocessor)
        return inputs, data['data_samples']

    def _detections(self, outputs: Sequence[Tensor],
                    data_samples: list) -> InstanceData:
        """Detections from the graph's outputs (``dets`` (1, K, 5),
        ``labels`` (1, K), ``masks`` (1, K, 28, 28)) as mmdeploy's backend
        model makes them, with the mask probabilities pasted into the
        image (``mask_probs``) before its 0.5 threshold."""
        masks = outputs[2] if len(outputs) > 2 else None
        samples = copy.deepcopy(data_samples)
        self.backend_model.postprocessing_results(outputs[0], outputs[1],
                                                  masks, samples)
        detections = _as_tensors(samples[0].pred_instances)
        if masks is not None:
            height, width = samples[0].metainfo['ori_shape'][:2]
            kept = outputs[0][0, :, 4] > 0  # as the backend model keeps
            detections.mask_probs = self.paste_masks(detections.bboxes,
                                                     masks[0][kept], width,
                                                     height).cpu()
        return detections

    @torch.no_grad()
    def onnxruntime_detections(self, inputs: Tensor,
                               data_samples: list) -> InstanceData:
        return self._detections(
            self.backend_model.predict(inputs.contiguous()), data_samples)

    @torch.no_grad()
    def pytorch_outputs(self, batch: Sequence[tuple]) -> List[tuple]:
        """The PyTorch model under the graph's post-processing, on each
        ``(inputs, data_samples)`` of ``batch``: mmdeploy's rewrites, run in
        PyTorch as mmdeploy's own tests run them (in one rewrite context:
        entering one takes seconds); for a graph exported with
        ``torch.onnx`` directly, mmdet's own predict
        (:func:`~.sparse_rcnn_onnx.mmdet_outputs`).

        Returns:
            list[tuple]: The outputs the graph has, for each input.
        """
        if self.export.mmdeploy_failure:
            return [
                mmdet_outputs(self.model, inputs, data_samples)
                for inputs, data_samples in batch
            ]
        from mmdeploy.core import RewriterContext, patch_model
        patched_model = patch_model(
            copy.deepcopy(self.model), cfg=self.deploy_cfg, backend=BACKEND)
        with RewriterContext(
                cfg=self.deploy_cfg,
                backend=BACKEND,
                opset=self.deploy_cfg.onnx_config.opset_version):
            return [
                patched_model(
                    inputs, copy.deepcopy(data_samples), mode='predict')
                for inputs, data_samples in batch
            ]

    @torch.no_grad()
    def mmdet_detections(self, inputs: Tensor,
                         data_samples: list) -> InstanceData:
        samples = self.model.predict(
            inputs, copy.deepcopy(data_samples), rescale=True)
        return _as_tensors(samples[0].pred_instances)

    def _check(self, name: str, inputs: Tensor, data_samples: list,
               pytorch_outputs: Sequence[Tensor]) -> ImageCheck:
        onnxruntime = self.onnxruntime_detections(inputs, data_samples)
        compare = dict(score_thr=self.score_thr, max_per_img=self.max_per_img)
        parity = match_detections(
            self._detections(pytorch_outputs, data_samples), onnxruntime,
            **compare)
        mmdet_parity = match_detections(
            self.mmdet_detections(inputs, data_samples), onnxruntime,
            **compare)
        return ImageCheck(name, parity, mmdet_parity)

    def check_traced(self, name: str) -> ImageCheck:
        """Compare the export with PyTorch on the image it was traced
        with, whose PyTorch outputs the trace computed."""
        traced = self.export.traced
        return self._check(name, traced.inputs, traced.data_samples,
                           traced.outputs)

    def check_images(self, images: Sequence[tuple]) -> List[ImageCheck]:
        """Compare the export with PyTorch on each ``(name, image)`` of
        ``images`` ((H, W, 3) BGR uint8)."""
        batch = [self.inputs(image) for _, image in images]
        outputs = self.pytorch_outputs(batch) if batch else []
        return [
            self._check(name, inputs, data_samples, reference)
            for (name,
                 _), (inputs,
                      data_samples), reference in zip(images, batch, outputs)
        ]


@dataclass
class OpComparison:
    """The op counts of an export beside those of its baseline config's
    export (:func:`~.onnx_export.graph_op_counts`), and the ops its kept
    implicit layers account for (:func:`~.onnx_export.kept_implicit_ops`).
    """
    ops: Dict[str, int]
    baseline: Dict[str, int]
    kept: Dict[str, int]

    @property
    def extra(self) -> Dict[str, int]:
        """Ops the export has more (or, negative, fewer) than the
        baseline's."""
        diff = {
            op: self.ops.get(op, 0) - self.baseline.get(op, 0)
            for op in sorted(set(self.ops) | set(self.baseline))
        }
        return {op: n for op, n in diff.items() if n}

    @property
    def explained(self) -> bool:
        """Whether the extra ops are exactly one per kept implicit layer."""
        return self.extra == {op: n for op, n in self.kept.items() if n}

    def format(self) -> str:
        lines = [f'  {"op":<24}{"export":>8}{"baseline":>10}{"diff":>7}']
        for op in sorted(set(self.ops) | set(self.baseline)):
            mine, base = self.ops.get(op, 0), self.baseline.get(op, 0)
            diff = f'{mine - base:+d}' if mine != base else ''
            lines.append(f'  {op:<24}{mine:>8}{base:>10}{diff:>7}')
        mine, base = sum(self.ops.values()), sum(self.baseline.values())
        lines.append(f'  {"total":<24}{mine:>8}{base:>10}'
                     f'{mine - base:>+7d}' if mine != base else
                     f'  {"total":<24}{mine:>8}{base:>10}')
        extra = ', '.join(f'{op} {n:+d}' for op, n in self.extra.items())
        kept = ', '.join(f'{n} {op}' for op, n in sorted(self.kept.items()))
        state = 'ok' if self.explained else 'FAILED'
        lines.append(f'extra ops: {extra or "none"}; kept implicit layers '
                     f'leave {kept or "none"} [{state}]')
        return '\n'.join(lines)
