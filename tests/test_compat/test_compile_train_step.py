# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``compile``: where a whole ``train_step`` does not compile,
``compile=True`` compiles forward and loss."""
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
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


def compile_train_step(model):
    """What mmengine's Runner does for ``compile=dict(backend='eager')``."""
    runner = SimpleNamespace(
        cfg=Config(dict(compile=dict(backend='eager'))),
        model=model,
        logger=MMLogger.get_current_instance())
    Runner._maybe_compile(runner, 'train_step')


def test_the_probe_says_whether_stock_mmengine_trains_compiled():
    model = ToyModel()
    runner = SimpleNamespace(
        cfg=Config(dict(compile=dict(backend='eager'))),
        model=model,
        logger=MMLogger.get_current_instance())
    Runner._maybe_compile.__wrapped__(runner, 'train_step')  # stock
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    try:
        model.train_step(dict(inputs=torch.randn(4, 3)), optim_wrapper)
        stock_failed = False
    except Exception:
        stock_failed = True
    finally:
        torch._dynamo.reset()
    assert whole_train_step_compile_fails(dict(backend='eager')) == \
        stock_failed


def test_compile_trains_and_predicts_eagerly_where_the_fix_acts():
    model = ToyModel()
    compile_train_step(model)
    fixed = whole_train_step_compile_fails(dict(backend='eager'))
    assert ('compile' in applied_fixes()) == fixed
    # stock mmengine replaces train_step; the fix compiles _run_forward
    assert ('train_step' in vars(model)) != fixed
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(inputs=torch.randn(4, 3))
    torch._dynamo.reset()
    counters.clear()
    before = model.linear.weight.clone()
    model.train_step(data, optim_wrapper)
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
    compile_train_step(model)
    # stock mmengine: the train_step itself, compiled
    assert 'train_step' in vars(model)
    torch._dynamo.reset()
    assert model.train_step(torch.ones(2), None)['loss'] == 2
    torch._dynamo.reset()
