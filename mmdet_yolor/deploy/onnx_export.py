# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Export a (folded) YOLOR or plain mmdet detector with mmdeploy for ONNX
Runtime, as mmdet users deploy.

The work dir gets what mmdeploy's own ``tools/deploy.py`` writes:
``end2end.onnx`` (dynamic batch and image size, post-processing and NMS
in the graph), the deploy config used (``deploy_config.py``), the model
config (``model_config.py``) and the SDK's ``deploy.json``,
``pipeline.json`` and ``detail.json``. mmdeploy's ``inference_model``,
``Detector`` and ``tools/test.py`` take them as any mmdet export.
mmdeploy 1.3.1 cannot export Sparse R-CNN (:func:`mmdeploy_failure`):
:mod:`.sparse_rcnn_onnx` exports it with ``torch.onnx`` directly, to a graph
with mmdeploy's inputs and outputs, and the work dir gets the graph and the
two configs.

A YOLOR checkpoint is folded first (:func:`fold_and_strip`): what
folded leaves no node in the graph, what is kept stays one ``Add``
(``ImplicitA``), ``Mul`` (``ImplicitM``) or ``Concat`` (``ImplicitC``) each.
When everything folds, the model config is the plain mmdet one and mmdet_yolor
is not needed to run the export.

mmdeploy is imported here only when used, after the fixes it needs on this
stack (:func:`mmdet_yolor.compat.apply_deploy_fixes`).
"""
import collections
import copy
import logging
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.logging import MMLogger
from torch import nn

from ..config_edits import strip_pretrained
from ..models import implicit_layers
from ..models.layers import ImplicitA, ImplicitC, ImplicitM
from ..package_data import config_path
from .fuse import FoldReport, fold_and_strip
from .fused_checkpoint import load_trained
from .sparse_rcnn_onnx import DETECTOR, MMDEPLOY_FAILURE, export_sparse_rcnn
from .tracing import DeployError, TracedRun, preprocess

ONNX_FILE = 'end2end.onnx'
DEPLOY_CONFIG_FILE = 'deploy_config.py'
MODEL_CONFIG_FILE = 'model_config.py'
BACKEND = 'onnxruntime'

# The packaged mmdeploy deploy configs (configs/deploy/), by task.
DEPLOY_CONFIGS = {
    'detection': 'deploy/detection/detection_onnxruntime_dynamic.py',
    'instance-seg': 'deploy/instance-seg/instance-seg_onnxruntime_dynamic.py',
}

# The ONNX op each kept implicit layer leaves in the graph.
IMPLICIT_OPS = {ImplicitA: 'Add', ImplicitM: 'Mul', ImplicitC: 'Concat'}


@dataclass
class PreparedModel:
    """A detector ready to export.

    Attributes:
        model (nn.Module): The detector in eval mode, folded and stripped
            unless exported as trained.
        model_cfg (Config): The config the export is used with (mmdeploy
            reads its ``test_pipeline``, ``data_preprocessor`` and
            ``test_cfg``): the plain mmdet config when everything folded.
        report (FoldReport, optional): What folding did; None when the
            model was not folded (``fold=False``). Its ``sites`` are empty
            for a plain mmdet model.
    """
    model: nn.Module
    model_cfg: Config
    report: Optional[FoldReport]


@dataclass
class ExportResult:
    """The files of an export (paths in ``work_dir``), what they hold and
    the run traced (a :class:`TracedRun`); ``mmdeploy_failure``: where
    mmdeploy fails on the detector, when it was exported with ``torch.onnx``
    directly (:func:`mmdeploy_failure`)."""
    work_dir: str
    onnx_file: str
    deploy_config_file: str
    model_config_file: str
    prepared: PreparedModel
    deploy_cfg: Config
    traced: TracedRun
    mmdeploy_failure: Optional[str] = None


def mmdeploy_failure(model_cfg: Config) -> Optional[str]:
    """Where mmdeploy 1.3.1 fails to export the detector of ``model_cfg``:
    such detectors (Sparse R-CNN) are exported with ``torch.onnx`` directly
    (:mod:`.sparse_rcnn_onnx`). None for the detectors mmdeploy exports.
    """
    return MMDEPLOY_FAILURE if model_cfg.model.get('type') == DETECTOR \
        else None


def with_masks(model_cfg: Config) -> bool:
    """Whether the detector predicts instance masks (a mask head in its RoI
    head)."""
    return bool(model_cfg.model.get('roi_head', {}).get('mask_head'))


def final_test_cfg(model_cfg: Config) -> dict:
    """The test_cfg of the detector's last stage (``rcnn`` of two-stage
    detectors)."""
    test_cfg = model_cfg.model.get('test_cfg') or {}
    return test_cfg.get('rcnn') or test_cfg


def deploy_config(model_cfg: Config) -> Config:
    """The mmdeploy deploy config for ``model_cfg``: the packaged ONNX
    Runtime config of its task, with the model's post-processing.

    mmdeploy takes score threshold, IoU threshold, candidates per level and
    detections per image from the model's ``test_cfg``; two settings mmdet
    does not have come from the deploy config, and are set to values that
    never cut more than mmdet does: no top-k over all levels before NMS
    (``pre_top_k=-1``), and at most ``max_per_img`` boxes per class, which
    no final top-``max_per_img`` exceeds.
    """
    task = 'instance-seg' if with_masks(model_cfg) else 'detection'
    cfg = Config.fromfile(config_path(DEPLOY_CONFIGS[task]))
    test_cfg = final_test_cfg(model_cfg)
    post_processing = cfg.codebase_config.post_processing
    post_processing.pre_top_k = -1
    if 'max_per_img' in test_cfg:
        post_processing.keep_top_k = test_cfg.max_per_img
        post_processing.max_output_boxes_per_class = test_cfg.max_per_img
    if 'score_thr' in test_cfg:
        post_processing.score_threshold = test_cfg.score_thr
    if 'iou_threshold' in test_cfg.get('nms', {}):
        post_processing.iou_threshold = test_cfg.nms.iou_threshold
    if mmdeploy_failure(model_cfg):
        # exported by torch.onnx, without mmdeploy's graph optimizer
        cfg.onnx_config.optimize = False
    return cfg


def deploy_model_config(cfg: Config) -> Config:
    """``cfg`` with ``test_pipeline`` set to what its test dataloader runs.

    mmdeploy reads the top-level ``test_pipeline``; many configs (mmdet's
    COCO bases overridden by a dataset of their own) test with the
    dataloader's pipeline instead, which is what the model was evaluated on.
    """
    cfg = copy.deepcopy(cfg)
    dataloader = cfg.get('test_dataloader') or {}
    pipeline = dataloader.get('dataset', {}).get('pipeline')
    if pipeline:
        cfg.test_pipeline = pipeline
    elif 'test_pipeline' not in cfg:
        raise DeployError(
            f'{cfg.filename or "the config"} has neither test_pipeline nor '
            f'test_dataloader.dataset.pipeline; add the test pipeline, which '
            f'mmdeploy applies to the images')
    return cfg


def prepare_model(cfg: Config,
                  checkpoint: Optional[str],
                  fold: bool = True) -> PreparedModel:
    """Build the detector of ``cfg``, load ``checkpoint`` and fold its
    implicit knowledge (:func:`fold_for_export`).

    Args:
        cfg (Config): The config the checkpoint was trained with (YOLOR or
            plain mmdet).
        checkpoint (str, optional): The checkpoint; None initialises the
            model (:func:`initialised_model`; for op counts).
        fold (bool): Fold the implicits. False exports the model as
            trained. Defaults to True.

    Returns:
        PreparedModel: The model and the config the export is used with.
    """
    model_cfg = deploy_model_config(cfg)
    if checkpoint is None:
        model = initialised_model(model_cfg)
    else:
        model = load_trained(model_cfg.model, checkpoint)[0]
    return fold_for_export(model, model_cfg, fold)


def initialised_model(model_cfg: Config) -> nn.Module:
    """Build the detector of ``model_cfg`` with mmdet's initialisation
    (``init_weights``), from scratch: without its pretrained weights,
    which would be downloaded.

    Built alone, some modules are no valid model: Sparse R-CNN's learned
    proposals are boxes of negative size until initialised. mmengine's
    message for each initialised parameter is not logged.
    """
    from_scratch = copy.deepcopy(model_cfg.model)
    strip_pretrained(from_scratch)
    model = MODELS.build(from_scratch)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def fold_for_export(model: nn.Module,
                    model_cfg: Config,
                    fold: bool = True) -> PreparedModel:
    """Put ``model`` in eval mode and, with ``fold``, fold its implicits and
    remove the folded ones (:func:`fold_and_strip`), in place.

    Args:
        model (nn.Module): The detector built from ``model_cfg``.
        model_cfg (Config): Its config, as :func:`deploy_model_config`
            gives it.
        fold (bool): Fold the implicits. Defaults to True.

    Returns:
        PreparedModel: ``model`` and the config its export is used with: the
        plain mmdet config when everything folded.
    """
    model.eval()
    report = None
    if fold:
        report = fold_and_strip(model)
        model_cfg = report.config_for(model_cfg)
    return PreparedModel(model, model_cfg, report)


def kept_implicit_ops(model: nn.Module) -> Dict[str, int]:
    """The ONNX ops the implicit layers still in ``model`` add to its graph
    (one each; see :data:`IMPLICIT_OPS`)."""
    counts = collections.Counter(
        IMPLICIT_OPS[type(implicit)]
        for implicit in implicit_layers(model).values())
    return dict(counts)


def graph_op_counts(onnx_file: str) -> Dict[str, int]:
    """Count the nodes of an ONNX graph by op type, subgraphs included.

    ``Identity`` nodes that only alias an initializer are not counted: the
    exporter merges parameters with equal values into one initializer and
    makes an ``Identity`` for each other use, so their number depends on the
    weights (zero-initialised biases of an untrained model), not on what the
    graph computes.
    """
    import onnx
    graph = onnx.load(onnx_file).graph
    counts = collections.Counter()
    graphs = [graph]
    while graphs:
        graph = graphs.pop()
        constants = {init.name for init in graph.initializer}
        for node in graph.node:
            graphs.extend(attribute.g for attribute in node.attribute
                          if attribute.type == onnx.AttributeProto.GRAPH)
            if node.op_type == 'Identity' and node.input[0] in constants:
                continue
            counts[node.op_type] += 1
    return dict(counts)


def export_onnx(model: nn.Module, model_cfg: Config, deploy_cfg: Config,
                image: np.ndarray, onnx_file: str) -> TracedRun:
    """Convert ``model`` with mmdeploy's ONNX export, as its ``torch2onnx``
    does, but from the given (folded) model instead of a config and
    checkpoint.

    Args:
        model (nn.Module): The detector, in eval mode; not modified.
        model_cfg (Config): Its config (pipeline, preprocessing, test_cfg).
        deploy_cfg (Config): The mmdeploy deploy config.
        image (np.ndarray): (H, W, 3) BGR uint8 image to trace with; the
            graph takes any image size.
        onnx_file (str): Where to write the graph.

    Returns:
        TracedRun: The input traced and the PyTorch outputs on it.
    """
    inputs, samples = preprocess(model, model_cfg, deploy_cfg, image)
    from mmdeploy.apis.onnx import export
    from mmdeploy.utils import get_dynamic_axes, get_ir_config

    # the rewritten forward sets img_shape of the samples it is given
    data_samples = copy.deepcopy(samples)
    onnx_cfg = get_ir_config(deploy_cfg)
    names = onnx_cfg.input_names + onnx_cfg.output_names
    os.makedirs(osp.dirname(osp.abspath(onnx_file)), exist_ok=True)
    # a copy: mmdeploy's export leaves the model's forward set to its rewrite
    traced = copy.deepcopy(model)
    outputs = []
    traced.register_forward_hook(
        lambda module, args, output: outputs.append(output))
    with torch.no_grad():
        export(
            traced,
            inputs,
            output_path_prefix=osp.splitext(onnx_file)[0],
            backend=BACKEND,
            input_metas=dict(data_samples=samples, mode='predict'),
            context_info=dict(deploy_cfg=deploy_cfg),
            input_names=onnx_cfg.input_names,
            output_names=onnx_cfg.output_names,
            opset_version=onnx_cfg.opset_version,
            dynamic_axes=get_dynamic_axes(deploy_cfg, names),
            keep_initializers_as_inputs=onnx_cfg.keep_initializers_as_inputs,
            optimize=onnx_cfg.get('optimize', False))
    return TracedRun(inputs, data_samples, tuple(outputs[0]))


def export_graph(model: nn.Module, model_cfg: Config, deploy_cfg: Config,
                 image: np.ndarray, onnx_file: str) -> TracedRun:
    """Export ``model`` to ``onnx_file``: with mmdeploy (:func:`export_onnx`)
    or, for a detector mmdeploy cannot export (:func:`mmdeploy_failure`),
    with ``torch.onnx`` directly
    (:func:`.sparse_rcnn_onnx.export_sparse_rcnn`). Same arguments and
    result as :func:`export_onnx`."""
    if mmdeploy_failure(model_cfg):
        return export_sparse_rcnn(model, model_cfg, deploy_cfg, image,
                                  onnx_file)
    return export_onnx(model, model_cfg, deploy_cfg, image, onnx_file)


def export_checkpoint(cfg: Config,
                      checkpoint: Optional[str],
                      work_dir: str,
                      image: np.ndarray,
                      fold: bool = True) -> ExportResult:
    """Fold a checkpoint, export it for ONNX Runtime and write the files
    mmdeploy's tools read (see the module docstring).

    Args:
        cfg (Config): The config the checkpoint was trained with.
        checkpoint (str, optional): The checkpoint (None: initialisation).
        work_dir (str): Where to write the files.
        image (np.ndarray): (H, W, 3) BGR uint8 image to trace with.
        fold (bool): Fold the implicits first. Defaults to True.

    Returns:
        ExportResult: The files and the model they were exported from.
    """
    prepared = prepare_model(cfg, checkpoint, fold)
    deploy_cfg = deploy_config(prepared.model_cfg)
    os.makedirs(work_dir, exist_ok=True)
    deploy_config_file = osp.join(work_dir, DEPLOY_CONFIG_FILE)
    model_config_file = osp.join(work_dir, MODEL_CONFIG_FILE)
    deploy_cfg.dump(deploy_config_file)
    prepared.model_cfg.dump(model_config_file)
    onnx_file = osp.join(work_dir, ONNX_FILE)
    traced = export_graph(prepared.model, prepared.model_cfg, deploy_cfg,
                          image, onnx_file)
    failure = mmdeploy_failure(prepared.model_cfg)
    # mmdeploy's SDK description fails on Sparse R-CNN too (its get_postprocess
    # reads test_cfg.rpn, None there)
    if not failure:
        from mmdeploy.backend.sdk.export_info import export2SDK
        export2SDK(
            deploy_config_file,
            model_config_file,
            work_dir,
            pth=checkpoint or '',
            device='cpu')
    return ExportResult(work_dir, onnx_file, deploy_config_file,
                        model_config_file, prepared, deploy_cfg, traced,
                        failure)
