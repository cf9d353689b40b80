# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Load a trained checkpoint, and write its fused form for deployment
(``tools/deploy/fuse_implicit.py``)."""
import os.path as osp
from typing import Optional, Tuple

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import nn

from .fuse import FoldReport, fold_and_strip


def load_trained(model_cfg: dict, checkpoint: str) -> Tuple[nn.Module, dict]:
    """Build the detector of ``model_cfg`` and load ``checkpoint`` into it,
    on the CPU.

    Returns:
        tuple: The model (in eval mode) and the checkpoint as loaded (its
        ``meta`` included).
    """
    model = MODELS.build(model_cfg)
    source = load_checkpoint(model, checkpoint, map_location='cpu')
    return model.eval(), source


def fuse_checkpoint(cfg: Config, checkpoint: str,
                    out: str) -> Tuple[FoldReport, Optional[str]]:
    """Fold the implicit knowledge of a trained YOLOR model and save it.

    Args:
        cfg (Config): The YOLOR config the checkpoint was trained with.
        checkpoint (str): The trained checkpoint.
        out (str): Path of the folded checkpoint to write.

    Returns:
        tuple: The :class:`FoldReport`, and the config ``out`` loads into
        (:meth:`FoldReport.config_for`). When everything folded, that is the
        plain mmdet config of the detector, written next to ``out`` as
        ``<out>.py``; mmdet_yolor is then not needed to use it. Otherwise it
        is ``cfg`` itself: the folded implicits are saved at identity (add
        0, multiply 1) and the rest keep their values.
    """
    model, source = load_trained(cfg.model, checkpoint)
    # saved for the YOLOR config unless everything folded: keep every key
    report = fold_and_strip(model, strip_partial=False)
    config = cfg.filename
    if report.complete:
        config = osp.splitext(out)[0] + '.py'
        report.config_for(cfg).dump(config)
    meta = dict(source.get('meta', {}))
    meta.pop('message_hub', None)
    # the file name only: an absolute path says nothing on another machine
    meta['mmdet_yolor'] = dict(
        fused_from=osp.basename(checkpoint), complete=report.complete)
    torch.save(dict(state_dict=model.state_dict(), meta=meta), out)
    return report, config
