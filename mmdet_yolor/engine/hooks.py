# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Training hooks that keep long runs reproducible and their checkpoints
sound. ``tools/train.py`` adds both to every training config."""
import math
import random
from typing import Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed Python, numpy and torch at the start of every epoch with
    ``runner.seed + epoch``.

    mmengine seeds once per run and does not save random states in
    checkpoints, so a run resumed after a crash would draw different random
    numbers (data augmentation, RoI sampling) than the uninterrupted run.
    Seeding each epoch from the epoch number makes both draw the same ones:
    with a fixed seed, a resumed CPU run ends with the weights of an
    uninterrupted one. Dataloader workers are seeded by mmengine each time
    they start; ``persistent_workers=True`` keeps them (and their random
    state) across epochs, which a resumed run cannot reproduce.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        seed = (runner.seed + runner.epoch) % 2**32
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop training at the first iteration whose loss is NaN or infinite,
    naming the loss and the iteration.

    It runs after every iteration, before the checkpoint hook, so no
    checkpoint with weights updated by a non-finite loss is written.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        # name the loss term that broke before the total it spoils
        outputs = outputs or {}
        names = sorted(outputs, key=lambda name: name == 'loss')
        for name in names:
            value = float(outputs[name])
            if not math.isfinite(value):
                raise FloatingPointError(
                    f'{name} is {value} at iteration {runner.iter + 1} '
                    f'(epoch {runner.epoch + 1}); training stopped before '
                    f'saving non-finite weights. Lower the learning rate, '
                    f'enable gradient clipping (optim_wrapper.clip_grad) or '
                    f'check the annotations of this batch.')
