# Copyright (c) mmdet_yolor contributors. All rights reserved.
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmdet.registry import HOOKS


def test_epoch_seed_hook_makes_each_epoch_draw_the_same_numbers():
    hook = HOOKS.build(dict(type='EpochSeedHook'))
    runner = SimpleNamespace(seed=7, epoch=3)

    def draws():
        hook.before_train_epoch(runner)
        return random.random(), np.random.rand(), torch.rand(1).item()

    first = draws()
    torch.rand(100)  # whatever happened in between
    assert draws() == first
    runner.epoch = 4
    assert draws() != first


def test_non_finite_loss_hook_names_loss_and_iteration():
    hook = HOOKS.build(dict(type='NonFiniteLossHook'))
    runner = SimpleNamespace(iter=11, epoch=1)
    finite = dict(loss=torch.tensor(1.), loss_cls=torch.tensor(0.5))
    hook.after_train_iter(runner, 0, outputs=finite)
    broken = dict(
        loss=torch.tensor(float('nan')),
        loss_cls=torch.tensor(0.5),
        loss_bbox=torch.tensor(float('inf')))
    with pytest.raises(
            FloatingPointError,
            match=r'^loss_bbox is inf at iteration 12 \(epoch 2\)'):
        hook.after_train_iter(runner, 0, outputs=broken)
