# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""APIs that differ across the stacks mmdet_yolor supports (README,
"Supported stacks": torch 2.1 to 2.13, numpy 1 and 2).

Each difference is settled by the feature itself (an attribute, a signature,
what an object pickles as, a probe of the API), never by a version number, so
a backport or a new release takes the branch that works. Fixes to defects of
the stack live in :mod:`mmdet_yolor.compat`; this module only hides which
spelling of an API the installed stack has, and the probes of the torch
behaviour those fixes depend on. Tested in
``tests/test_stack_api.py`` on every stack of the matrix.
"""
import contextlib
import functools
import inspect
import io
import logging
import pickle
import warnings
from types import CodeType
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils import _pytree

# Where numpy's pickles name the functions that rebuild arrays and scalars:
# numpy 1 writes ``numpy.core.multiarray``, numpy 2 ``numpy._core.multiarray``
# (numpy 1.26's ``numpy._core`` is a stub without ``multiarray`` until that
# submodule is imported, so neither spelling is an attribute path to rely on).
NUMPY_PICKLE_MODULES = ('numpy.core.multiarray', 'numpy._core.multiarray')


def tree_leaves(tree) -> list:
    """The leaves of nested lists, tuples and dicts, in order:
    ``torch.utils._pytree.tree_leaves`` where torch has it (>= 2.2), the
    leaves of ``tree_flatten`` before."""
    leaves = getattr(_pytree, 'tree_leaves', None)
    return leaves(tree) if leaves else _pytree.tree_flatten(tree)[0]


def numpy_pickle_functions() -> Dict[str, Callable]:
    """The functions numpy pickles arrays and scalars with (``_reconstruct``
    and ``scalar``), taken from what an array and a scalar pickle as, so
    they are found on numpy 1 and 2 alike."""
    return {
        function.__name__: function
        for function in (np.zeros(0).__reduce__()[0],
                         np.float64(0).__reduce__()[0])
    }


def numpy_pickle_aliases() -> List[Tuple[Callable, str]]:
    """``(function, 'module.name')`` for numpy's pickle functions under both
    of numpy's spellings (:data:`NUMPY_PICKLE_MODULES`): what a checkpoint
    written under the other numpy names them by."""
    return [(function, f'{module}.{name}')
            for name, function in numpy_pickle_functions().items()
            for module in NUMPY_PICKLE_MODULES]


def _probe_global() -> None:
    """A function pickled by the name ``_probe_alias`` (below), for the
    probes of ``torch.load``."""


_probe_global.__qualname__ = _probe_global.__name__ = '_probe_alias'
_probe_alias = _probe_global


class _Probe:

    def __reduce__(self):
        return _probe_global, ()


def _probe_checkpoint() -> io.BytesIO:
    """A ``torch.save`` of :class:`_Probe`, ready to load."""
    buffer = io.BytesIO()
    torch.save(_Probe(), buffer)
    buffer.seek(0)
    return buffer


@functools.lru_cache(maxsize=None)
def safe_globals_take_names() -> bool:
    """Whether ``torch.serialization.safe_globals`` allows a global under a
    name of the caller's (``(global, 'module.name')`` pairs, torch >= 2.6),
    found by loading a pickle that names a global so, weights-only."""
    if not hasattr(torch.serialization, 'safe_globals'):
        return False
    buffer = _probe_checkpoint()
    try:
        with safe_globals([(_probe_global, f'{__name__}._probe_alias')]):
            torch.load(buffer, weights_only=True)
    except Exception:  # any refusal or error: pairs are not understood
        return False
    return True


def loads_weights_only_by_default() -> bool:
    """Whether ``torch.load`` without ``weights_only`` refuses pickled
    objects it does not know (torch >= 2.6, or ``TORCH_FORCE_WEIGHTS_ONLY_
    LOAD``), found by loading a pickle of one."""
    buffer = _probe_checkpoint()
    try:
        with warnings.catch_warnings():  # torch 2.4-2.5 warn of the change
            warnings.simplefilter('ignore', FutureWarning)
            torch.load(buffer)
    except pickle.UnpicklingError:
        return True
    return False


def onnx_torchscript_exporter() -> Dict[str, bool]:
    """The keyword arguments of ``torch.onnx.export`` that select the
    TorchScript exporter: ``dynamo=False`` where the argument exists (torch
    >= 2.4; the dynamo exporter is the default from 2.9), none where the
    TorchScript exporter is the only one."""
    if 'dynamo' in inspect.signature(torch.onnx.export).parameters:
        return dict(dynamo=False)
    return {}


def onnx_export_defaults_to_dynamo() -> bool:
    """Whether ``torch.onnx.export`` selects the dynamo exporter unless told
    otherwise (torch >= 2.9)."""
    dynamo = inspect.signature(torch.onnx.export).parameters.get('dynamo')
    return dynamo is not None and dynamo.default is True


def safe_globals(allowed: list):
    """``torch.serialization.safe_globals(allowed)`` (torch >= 2.5), a
    context that allows ``allowed`` in weights-only loads; a context that
    does nothing on older torch, which loads everything by default."""
    context = getattr(torch.serialization, 'safe_globals', None)
    return context(allowed) if context else contextlib.nullcontext()


def _add_pair(a, b):
    return a + b


def _map_over_two(x):
    return list(map(_add_pair, [x, x], [x, x]))


def dynamo_traces_map_over_iterables() -> bool:
    """Whether dynamo traces ``map(func, a, b)`` in one graph (torch 2.13
    does; 2.1.2 and 2.4.1 break the graph there), found by compiling a
    two-line function with the eager backend. Imports dynamo."""
    import torch._dynamo
    dynamo_log = logging.getLogger('torch._dynamo')
    level = dynamo_log.level
    dynamo_log.setLevel(logging.ERROR)  # its warning on a failed trace
    try:
        torch.compile(
            _map_over_two, backend='eager', fullgraph=True)(
                torch.ones(1))
    except Exception:  # any failure to trace it whole
        return False
    finally:
        dynamo_log.setLevel(level)
        torch._dynamo.reset()
    return True


def recompiles_loggers() -> List[logging.Logger]:
    """The loggers of dynamo's ``recompiles`` log artifact, one record per
    recompilation: ``torch._dynamo.guards`` logs them in newer torch,
    ``torch._dynamo.convert_frame`` in torch 2.1; found by their artifact
    name among the loggers dynamo created.

    Raises:
        RuntimeError: If dynamo has no such logger (recompiles would count
            as 0 without one).
    """
    import torch._dynamo  # noqa: F401  (creates its loggers)
    loggers = [
        logging.getLogger(name)
        for name in list(logging.Logger.manager.loggerDict)
        if name.startswith('torch._dynamo.') and name.endswith('.__recompiles')
    ]
    if not loggers:
        raise RuntimeError(
            f'torch {torch.__version__} has no logger of dynamo\'s '
            f'"recompiles" artifact; recompiles cannot be counted')
    return loggers


def dynamo_skip_code() -> Optional[Callable[[CodeType], None]]:
    """``torch._dynamo.eval_frame.skip_code``: marks a function's code so
    that dynamo runs its frames eagerly (what dynamo does to a frame it gave
    up on) while still inlining calls to it from frames it traces. Present
    from torch 2.1 to 2.13; None where a torch lacks it. Imports dynamo."""
    import torch._dynamo.eval_frame
    return getattr(torch._dynamo.eval_frame, 'skip_code', None)


def compiling_probe() -> Callable[[], bool]:
    """The function telling whether dynamo traces its caller (a constant
    True in the frames it compiles): ``torch.compiler.is_compiling`` (torch
    2.3 on), else ``torch._dynamo.is_compiling`` (torch 2.1 and 2.2).
    Imports dynamo on those."""
    probe = getattr(torch.compiler, 'is_compiling', None)
    if probe is None:
        from torch import _dynamo
        probe = _dynamo.is_compiling
    return probe
