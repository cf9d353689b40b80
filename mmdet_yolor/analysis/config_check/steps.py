# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What each variant of a row goes through: built and initialised, trained
a few steps as mmengine's Runner would, and asked for predictions."""
import copy
from typing import List

import numpy as np
import torch
from mmdet.registry import MODELS, PARAM_SCHEDULERS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.optim import build_optim_wrapper
from torch import nn

from .inputs import eval_batch
from .settings import SweepSettings


def build_model(cfg: Config, seed: int) -> nn.Module:
    """Build and initialise ``cfg``'s model, seeded. (Built from a copy:
    some detectors write into their config, DETR its class weights, DINO
    its denoising settings.)"""
    torch.manual_seed(seed)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model


def _build_schedulers(cfg: Config, optim_wrapper) -> list:
    """The config's parameter schedulers, as a Runner builds them;
    epoch-based ones stay at their epoch-0 value (the sweep's steps are
    the first iterations of a run)."""
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    built = []
    for scheduler in schedulers:
        scheduler = copy.deepcopy(scheduler)
        scheduler.pop('convert_to_iter_based', None)
        built.append(
            PARAM_SCHEDULERS.build(
                scheduler, default_args=dict(optimizer=optim_wrapper)))
    return built


def train(model: nn.Module, cfg: Config, batch: dict,
          settings: SweepSettings) -> List[float]:
    """Train ``model`` ``settings.steps`` steps on ``batch`` with
    ``cfg``'s optimizer and schedulers, setting the epoch and iteration
    in the message hub as mmengine's ``RuntimeInfoHook`` does, and return
    the losses.

    Raises:
        FloatingPointError: If a loss is not finite.
    """
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = _build_schedulers(cfg, optim_wrapper)
    hub = MessageHub.get_current_instance()
    train_cfg = cfg.get('train_cfg') or {}
    hub.update_info('epoch', 0)
    hub.update_info('max_epochs', train_cfg.get('max_epochs', 1))
    hub.update_info('max_iters', train_cfg.get('max_iters', settings.steps))
    model.train()
    losses = []
    torch.manual_seed(settings.seed)
    for step in range(settings.steps):
        hub.update_info('iter', step)
        log_vars = model.train_step(copy.deepcopy(batch), optim_wrapper)
        loss = float(torch.as_tensor(log_vars['loss']).detach())
        if not np.isfinite(loss):
            raise FloatingPointError(f'loss is {loss} at step {step + 1}')
        losses.append(loss)
        for scheduler in schedulers:
            if not scheduler.by_epoch:
                scheduler.step()
    return losses


@torch.no_grad()
def predict(model: nn.Module, cfg: Config, batch: dict) -> List[DetDataSample]:
    """``model``'s predictions for ``batch`` in eval mode, in batches of
    ``cfg``'s test dataloader (of one image for most configs; some heads,
    such as guided anchoring's masked convs, predict only one at a time).
    """
    model.eval()
    data = eval_batch(batch)
    size = (cfg.get('test_dataloader') or {}).get('batch_size') or len(
        data['inputs'])
    results = []
    for start in range(0, len(data['inputs']), size):
        chunk = {key: value[start:start + size] for key, value in data.items()}
        results.extend(model.test_step(copy.deepcopy(chunk)))
    return results
