# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What folded YOLOR costs in ONNX Runtime: the mmdeploy exports of the
baseline, of YOLOR in the paper placement folded and of YOLOR in the
foldable placement folded, timed in one run.

Each variant is exported as :mod:`mmdet_yolor.deploy.onnx_export` exports a
checkpoint (post-processing and NMS in the graph; Sparse R-CNN with
``torch.onnx`` directly) and run in its own ONNX
Runtime session on the same input. The variants take turns in every round
(:func:`~yolor_dev.benchmark.interleaved_median_ms`); the median
of each is reported with its ratio to the baseline. The YOLOR models carry
the baseline's weights and their implicits at initialisation (near the
identity), so NMS sees about as many boxes in each.
"""
import os.path as osp
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mmdet_yolor.deploy.onnx_export import (deploy_config, deploy_model_config,
                                            export_graph, fold_for_export,
                                            graph_op_counts, initialised_model)
from mmdet_yolor.toggle import yolorize

from .benchmark import (BenchmarkSettings, interleaved_median_ms,
                        variant_configs)
from .shapes_images import generated_images

BASELINE, PAPER_FOLDED, FOLDABLE_FOLDED = ('baseline', 'YOLOR folded',
                                           'foldable folded')


@dataclass
class OnnxRuntimeSettings:
    """How to measure.

    Attributes:
        image_size (int): Side of the square input image (the network input;
            the test pipeline's resize is not applied).
        warmup (int): Untimed runs of each session before timing.
        repeats (int): Timed runs of each session (the median is kept).
        threads (int): ONNX Runtime intra-op threads; 0 lets it choose.
    """
    image_size: int = 320
    warmup: int = 5
    repeats: int = 30
    threads: int = 1


@dataclass
class OnnxRuntimeResult:
    """One variant: graph nodes, detections kept on the benchmark image and
    the median latency of a session run (milliseconds)."""
    name: str
    nodes: int
    detections: int
    latency_ms: float


def variant_models(cfg: Config,
                   checkpoint: Optional[str] = None) -> Dict[str, tuple]:
    """Build baseline, YOLOR (paper placement) and YOLOR (foldable
    placement) for ``cfg`` (a baseline or a YOLOR config) with the
    baseline's weights, and fold the YOLOR ones.

    Args:
        cfg (Config): A baseline or a YOLOR config.
        checkpoint (str, optional): A checkpoint of the baseline (trained
            weights make NMS see real detections); by default the
            initialisation.

    Returns:
        dict: ``{variant: PreparedModel}``.
    """
    configs = variant_configs(cfg)
    configs = {
        BASELINE: configs['baseline'],
        PAPER_FOLDED: configs['YOLOR'],
        FOLDABLE_FOLDED: yolorize(configs['baseline'], foldable=True),
    }
    prepared = {}
    state = None
    for name, variant_cfg in configs.items():
        model_cfg = deploy_model_config(variant_cfg)
        torch.manual_seed(0)
        model = initialised_model(model_cfg)
        if state is None:
            if checkpoint is not None:
                load_checkpoint(model, checkpoint, map_location='cpu')
            state = model.state_dict()
        else:
            model.load_state_dict(state, strict=False)
        prepared[name] = fold_for_export(model, model_cfg, fold=True)
    return prepared


def _session(onnx_file: str, threads: int):
    import onnxruntime
    from mmdeploy.backend.onnxruntime.init_plugins import get_ops_path
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # mmdeploy's ONNX Runtime ops, as its backend wrapper loads them
    if osp.exists(get_ops_path()):
        options.register_custom_ops_library(get_ops_path())
    return onnxruntime.InferenceSession(
        onnx_file, options, providers=['CPUExecutionProvider'])


def run_onnxruntime_benchmark(
        cfg: Config,
        settings: OnnxRuntimeSettings,
        work_dir: Optional[str] = None,
        checkpoint: Optional[str] = None) -> List[OnnxRuntimeResult]:
    """Export and time the three variants of ``cfg``.

    Args:
        cfg (Config): A baseline config, or a YOLOR config in the paper
            placement (its baseline is its plain form).
        settings (OnnxRuntimeSettings): How to measure.
        work_dir (str, optional): Where to write the exports (a temporary
            directory if None).
        checkpoint (str, optional): Baseline weights for every variant.

    Returns:
        list[OnnxRuntimeResult]: Baseline first.
    """
    image = generated_images([settings.image_size])[0]
    prepared = variant_models(cfg, checkpoint)
    with tempfile.TemporaryDirectory() as tmp_dir:
        work_dir = work_dir or tmp_dir
        files = {
            name: osp.join(work_dir, name.replace(' ', '_'), 'end2end.onnx')
            for name in prepared
        }
        for name, variant in prepared.items():
            export_graph(variant.model, variant.model_cfg,
                         deploy_config(variant.model_cfg), image, files[name])
        preprocessor = prepared[BASELINE].model.data_preprocessor
        with torch.no_grad():
            inputs = preprocessor(
                dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)]),
                False)['inputs']
        feed = {'input': inputs.numpy()}
        sessions = {
            name: _session(path, settings.threads)
            for name, path in files.items()
        }
        detections = {
            name: int((session.run(None, feed)[0][0, :, 4] > 0).sum())
            for name, session in sessions.items()
        }
        latency = interleaved_median_ms(
            {
                name: (lambda s=session: s.run(None, feed))
                for name, session in sessions.items()
            },
            BenchmarkSettings(
                warmup=settings.warmup, repeats=settings.repeats,
                device='cpu'))
        nodes = {
            name: sum(graph_op_counts(path).values())
            for name, path in files.items()
        }
    return [
        OnnxRuntimeResult(name, nodes[name], detections[name], latency[name])
        for name in files
    ]


def format_table(results: List[OnnxRuntimeResult]) -> str:
    """Markdown table; the rows after the baseline carry ratios to it."""
    base = results[0]
    lines = [
        '| model | ONNX nodes | detections | ONNX Runtime latency |',
        '| :-- | --: | --: | --: |',
    ]
    for result in results:
        nodes, latency = f'{result.nodes}', f'{result.latency_ms:.2f} ms'
        if result is not base:
            nodes += f' ({result.nodes - base.nodes:+d})'
            latency += f' ({result.latency_ms / base.latency_ms:.3f}x)'
        lines.append(f'| {result.name} | {nodes} | {result.detections} | '
                     f'{latency} |')
    return '\n'.join(lines)
