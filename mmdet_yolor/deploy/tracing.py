# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the ONNX exports share: their error, the traced run they return and
the preprocessing of the traced image. Both exporters import it: mmdeploy's
(:mod:`.onnx_export`) and ``torch.onnx``'s for Sparse R-CNN
(:mod:`.sparse_rcnn_onnx`), which :mod:`.onnx_export` dispatches to.
"""
import copy
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
from mmengine.config import Config
from torch import nn

from ..compat import apply_deploy_fixes
from ..errors import InputError


class DeployError(InputError):
    """A model or config cannot be exported."""


@dataclass
class TracedRun:
    """The run of the PyTorch model that the export traced.

    Tracing runs the model under mmdeploy's rewrites on real tensors, so
    its outputs are the PyTorch model's under the graph's post-processing
    (for a ``torch.onnx`` export of :mod:`.sparse_rcnn_onnx`, mmdet's own
    ``predict`` on the traced input).

    Attributes:
        inputs (Tensor): (1, 3, H, W) preprocessed image.
        data_samples (list): Its data samples (image metas).
        outputs (tuple[Tensor]): ``dets`` (1, K, 5), ``labels`` (1, K) and,
            with masks, ``masks`` (1, K, 28, 28).
    """
    inputs: torch.Tensor
    data_samples: list
    outputs: Tuple[torch.Tensor, ...]


def preprocess(model: nn.Module, model_cfg: Config, deploy_cfg: Config,
               image: np.ndarray) -> Tuple[torch.Tensor, list]:
    """The config's test pipeline and the model's preprocessing applied to
    ``image``, as mmdeploy's ``create_input`` applies them.

    Args:
        model (nn.Module): The detector (its ``data_preprocessor``).
        model_cfg (Config): Its config; not modified.
        deploy_cfg (Config): The mmdeploy deploy config.
        image (np.ndarray): (H, W, 3) BGR uint8 image.

    Returns:
        tuple: (1, 3, H', W') input tensor and its data samples.
    """
    apply_deploy_fixes()
    from mmdeploy.apis.utils import build_task_processor

    # a copy: create_input sets the loading transform of the config's
    # pipeline to LoadImageFromNDArray in place
    task_processor = build_task_processor(
        copy.deepcopy(model_cfg), deploy_cfg, 'cpu')
    data, inputs = task_processor.create_input(
        image, None, data_preprocessor=model.data_preprocessor)
    return inputs, data['data_samples']
