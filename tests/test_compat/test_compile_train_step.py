# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``compile``: where a whole ``train_step`` does not compile,
``compile=True`` compiles forward and loss."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from torch._dynamo.utils import counters

from mmdet_yolor.compat import applied_fixes
from mmdet_yolor.compat.compile_train_step import \
    whole_train_step_compile_fails


class ToyModel(BaseModel):
    """A linear model with mmengine's forward modes."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return [out]


# A plain SGD, and what mmdet configs have: a paramwise_cfg, whose param
# groups mmengine builds as ConfigDicts (what dynamo >= 2.6 cannot iterate).
OPTIM_WRAPPERS = {
    'plain':
    dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
    'paramwise':
    dict(
        type='OptimWrapper',
        optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
        paramwise_cfg=dict(bias_lr_mult=2.0)),
}
COMPILE = dict(backend='eager')


def compiled_runner(model, optim_wrapper):
    """What mmengine's Runner holds when it compiles ``train_step``."""
    return SimpleNamespace(
        cfg=Config(dict(compile=COMPILE, optim_wrapper=optim_wrapper)),
        model=model,
        logger=MMLogger.get_current_instance())


@pytest.mark.parametrize('optim_wrapper', OPTIM_WRAPPERS)
def test_the_probe_says_whether_stock_mmengine_trains_compiled(optim_wrapper):
    model = ToyModel()
    cfg = OPTIM_WRAPPERS[optim_wrapper]
    runner = compiled_runner(model, cfg)
    Runner._maybe_compile.__wrapped__(runner, 'train_step')  # stock
    try:
        model.train_step(
            dict(inputs=torch.randn(4, 3)),
            build_optim_wrapper(model, copy.deepcopy(cfg)))
        stock_failed = False
    except Exception:
        stock_failed = True
    finally:
        torch._dynamo.reset()
    assert whole_train_step_compile_fails(COMPILE, model.data_preprocessor,
                                          cfg) == stock_failed


@pytest.mark.parametrize('optim_wrapper', OPTIM_WRAPPERS)
def test_compile_trains_and_predicts_eagerly_where_the_fix_acts(optim_wrapper):
    model = ToyModel()
    cfg = OPTIM_WRAPPERS[optim_wrapper]
    Runner._maybe_compile(compiled_runner(model, cfg), 'train_step')
    fixed = whole_train_step_compile_fails(COMPILE, model.data_preprocessor,
                                           cfg)
    if fixed:
        assert 'compile' in applied_fixes()
    # stock mmengine replaces train_step; the fix compiles _run_forward
    assert ('train_step' in vars(model)) != fixed
    data = dict(inputs=torch.randn(4, 3))
    torch._dynamo.reset()
    counters.clear()
    before = model.linear.weight.clone()
    model.train_step(data, build_optim_wrapper(model, copy.deepcopy(cfg)))
    compiled_frames = counters['frames']['total']
    assert compiled_frames >= 1  # the loss forward ran compiled
    assert not torch.equal(model.linear.weight, before)  # and it trained
    model.val_step(data)
    if fixed:  # predictions run eagerly
        assert counters['frames']['total'] == compiled_frames
    torch._dynamo.reset()


def test_the_wrapper_looks_like_what_it_wraps():
    assert Runner._maybe_compile.__name__ == '_maybe_compile'
    assert Runner._maybe_compile.__wrapped__.__module__ == \
        'mmengine.runner.runner'


class PlainTrainStep(torch.nn.Module):
    """A model with a ``train_step`` of its own and no mmengine
    ``_run_forward`` (not a BaseModel)."""

    def train_step(self, data, optim_wrapper):
        return dict(loss=data.sum())


def test_compile_of_a_model_without_run_forward_is_stock():
    model = PlainTrainStep()
    Runner._maybe_compile(
        compiled_runner(model, OPTIM_WRAPPERS['paramwise']), 'train_step')
    # stock mmengine: the train_step itself, compiled
    assert 'train_step' in vars(model)
    torch._dynamo.reset()
    assert model.train_step(torch.ones(2), None)['loss'] == 2
    torch._dynamo.reset()
