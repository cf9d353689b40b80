# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fold a trained YOLOR checkpoint and write the result for deployment."""
import os.path as osp
from typing import Tuple

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from ..toggle import unyolorize
from .fuse import FoldReport, prepare_for_deployment


def fuse_checkpoint(cfg: Config, checkpoint: str,
                    out: str) -> Tuple[FoldReport, str]:
    """Fold the implicit knowledge of a trained YOLOR model and save it.

    Args:
        cfg (Config): The YOLOR config the checkpoint was trained with.
        checkpoint (str): The trained checkpoint.
        out (str): Path of the folded checkpoint to write.

    Returns:
        tuple: The :class:`FoldReport`, and the config ``out`` loads into.
        When everything folded, that is the plain mmdet config of the
        detector (``unyolorize(cfg)``), written next to ``out`` as
        ``<out>.py``; mmdet_yolor is then not needed to use it. Otherwise it
        is ``cfg`` itself: the folded implicits are saved at identity (add
        0, multiply 1) and the rest keep their values.
    """
    model = MODELS.build(cfg.model)
    source = load_checkpoint(model, checkpoint, map_location='cpu')
    model.eval()
    # saved for the YOLOR config unless everything folded: keep every key
    report = prepare_for_deployment(model, strip_partial=False)
    if report.complete:
        config = osp.splitext(out)[0] + '.py'
        unyolorize(cfg).dump(config)
    else:
        config = cfg.filename
    meta = dict(source.get('meta', {}))
    meta.pop('message_hub', None)
    # the file name only: an absolute path says nothing on another machine
    meta['mmdet_yolor'] = dict(
        fused_from=osp.basename(checkpoint), complete=report.complete)
    torch.save(dict(state_dict=model.state_dict(), meta=meta), out)
    return report, config
