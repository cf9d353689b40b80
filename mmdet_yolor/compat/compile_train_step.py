# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``compile``: ``compile=True`` trains where dynamo cannot compile
mmengine's whole ``train_step``.

mmengine 0.10.7's ``Runner`` compiles the whole ``train_step``: the data
preprocessing, forward, loss and the optimizer step. Dynamo fails on parts
that are not the model's: on torch >= 2.6 in ``torch/optim``, iterating the
``ConfigDict`` parameter groups that mmengine builds from a ``paramwise_cfg``
(``'UserDefinedDictVariable' object has no attribute 'items'``); on torch
2.1 in mmengine's batch stacking (``scalar_tensor(): argument 's' must be
Number``). Whether it fails takes a compile to find, so at import the fix
only wraps ``Runner._maybe_compile``; the first run with ``compile`` set
compiles and runs the ``train_step`` of a one-conv model with the run's
data preprocessor, ``optim_wrapper`` config and ``compile`` options on a
generated image. Only where that fails does the fix act: it lets the stock
code compile the model's ``_run_forward`` instead (forward and loss, with
the config's ``compile`` options) and uses the compiled one in
``mode='loss'`` only; the data preprocessing, the optimizer step,
validation and testing run eagerly, as stock mmengine runs validation and
testing.
"""
import copy
import functools
import json
from typing import Callable, Dict, Optional

import torch
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.runner import Runner
from torch import nn

from .registry import Fix, record_applied

DEFECT = ("dynamo cannot compile mmengine's whole train_step with this "
          "run's data preprocessor and optimizer, so compile=True runs do "
          'not train')


def runner_compiles_whole_train_step() -> bool:
    """Whether mmengine's ``Runner.train`` compiles ``train_step`` whole."""
    code = Runner.train.__code__
    return '_maybe_compile' in code.co_names and 'train_step' in code.co_consts


class _OneConv(BaseModel):
    """The smallest detector-like mmengine model with a loss: the run's data
    preprocessor, one conv."""

    def __init__(self, data_preprocessor: nn.Module):
        super().__init__(data_preprocessor=data_preprocessor)
        self.conv = nn.Conv2d(3, 1, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if isinstance(inputs, (list, tuple)):  # a preprocessor that kept them
            inputs = torch.stack(inputs).float()
        return dict(loss=self.conv(inputs).pow(2).mean())


_verdicts: Dict[str, bool] = {}


def whole_train_step_compile_fails(
        compile_options: dict,
        data_preprocessor: nn.Module,
        optim_wrapper_cfg: Optional[dict] = None) -> bool:
    """Whether compiling and running the ``train_step`` of a one-conv model
    with a copy of ``data_preprocessor``, an optimizer built from
    ``optim_wrapper_cfg`` (plain SGD if None) and ``compile_options`` fails
    on one generated 64x64 image; cached per arguments."""
    key = json.dumps(
        [compile_options, optim_wrapper_cfg,
         repr(data_preprocessor)],
        sort_keys=True,
        default=str)
    if key not in _verdicts:
        model = _OneConv(copy.deepcopy(data_preprocessor))
        if optim_wrapper_cfg is None:
            optim_wrapper = OptimWrapper(
                torch.optim.SGD(model.parameters(), lr=0.1))
        else:
            optim_wrapper = build_optim_wrapper(
                model, copy.deepcopy(optim_wrapper_cfg))
        # the images alone: what the data samples need (their boxes, masks
        # and batch augments) is not what dynamo fails on
        batch = dict(
            inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
            data_samples=None)
        if getattr(model.data_preprocessor, 'batch_augments', None):
            model.data_preprocessor.batch_augments = None
        train_step = torch.compile(model.train_step, **compile_options)
        try:
            train_step(batch, optim_wrapper)
            _verdicts[key] = False
        except Exception:  # any failure to compile it
            _verdicts[key] = True
    return _verdicts[key]


def _stock_compile_fails(runner) -> bool:
    """:func:`whole_train_step_compile_fails` with what ``runner`` trains
    with."""
    compile_options = runner.cfg.get('compile', None)
    optim_wrapper_cfg = runner.cfg.get('optim_wrapper', None)
    model = getattr(runner.model, 'module', runner.model)  # DDP holds it
    return whole_train_step_compile_fails(
        dict(compile_options) if isinstance(compile_options, dict) else {},
        model.data_preprocessor,
        dict(optim_wrapper_cfg)
        if isinstance(optim_wrapper_cfg, dict) else None)


def compile_forward_and_loss() -> None:
    """Wrap ``Runner._maybe_compile``: where a whole ``train_step`` does not
    compile, compile the model's forward and loss instead."""
    stock = Runner._maybe_compile

    @functools.wraps(stock)
    def _maybe_compile(self, target: str) -> None:
        # a model without mmengine's ``_run_forward`` (not a BaseModel), or
        # a run without ``compile``: as stock mmengine
        if (target != 'train_step' or not self.cfg.get('compile', None)
                or not hasattr(self.model, '_run_forward')
                or not _stock_compile_fails(self)):
            return stock(self, target)
        record_applied(FIX.name, DEFECT)
        self.logger.info(f'mmdet_yolor applied stack fix {FIX.name}: '
                         f'{DEFECT}; compiling forward and loss instead')
        eager = self.model._run_forward
        # the stock code, options and log message, on another target
        stock(self, '_run_forward')
        compiled = self.model.__dict__.pop('_run_forward', eager)
        if compiled is not eager:
            self.model._run_forward = functools.partial(
                _run_loss_compiled, eager, compiled)

    Runner._maybe_compile = _maybe_compile


def _run_loss_compiled(eager: Callable, compiled: Callable, data, mode: str):
    """``_run_forward`` with the compiled function for the loss, the eager
    one for predictions (validation in a training run)."""
    return (compiled if mode == 'loss' else eager)(data, mode)


FIX = Fix(
    name='compile',
    defect=DEFECT,
    probe=runner_compiles_whole_train_step,
    apply=compile_forward_and_loss,
    private_attributes=('mmengine.runner.Runner._maybe_compile', ),
    confirmed_at_first_use=True)
