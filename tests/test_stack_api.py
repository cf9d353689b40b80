# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The spellings of torch and numpy APIs that differ across the supported
stacks (mmdet_yolor/stack_api.py), checked on whichever stack runs them."""
import inspect
import io
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import onnx
import torch
from torch import nn

from mmdet_yolor import stack_api


def test_tree_leaves_in_order_through_lists_tuples_and_dicts():
    a, b, c, d = (torch.full((1, ), float(i)) for i in range(4))
    tree = [a, (b, {'y': d, 'x': c}), OrderedDict(z=1)]
    leaves = stack_api.tree_leaves(tree)
    # dict keys sorted as torch's pytree sorts them is not promised: values
    # come in the dict's own order
    assert leaves[:2] == [a, b] and len(leaves) == 5 and leaves[-1] == 1
    assert {id(leaf) for leaf in leaves[2:4]} == {id(c), id(d)}


def test_numpy_pickle_functions_are_what_arrays_and_scalars_pickle_with():
    functions = stack_api.numpy_pickle_functions()
    assert set(functions) == {'_reconstruct', 'scalar'}
    reconstruct, args = np.arange(3).__reduce__()[:2]
    assert reconstruct is functions['_reconstruct']
    scalar, args = np.float32(2.5).__reduce__()
    assert scalar is functions['scalar'] and scalar(*args) == 2.5
    # the module numpy pickles them by is one of the two spellings
    for function in functions.values():
        assert function.__module__ in stack_api.NUMPY_PICKLE_MODULES
    aliases = {name for _, name in stack_api.numpy_pickle_aliases()}
    assert aliases == {
        f'{module}.{name}'
        for module in stack_api.NUMPY_PICKLE_MODULES for name in functions
    }


def test_each_numpy_spelling_imports_the_pickle_functions():
    # what unpickling does with a name written by either numpy: both
    # spellings resolve on numpy 1 and 2
    for _, name in stack_api.numpy_pickle_aliases():
        module, attribute = name.rsplit('.', 1)
        data = f'c{module}\n{attribute}\n.'.encode()
        assert callable(pickle.loads(data)), name


def test_safe_globals_take_names_where_torch_documents_pairs():
    safe_globals = getattr(torch.serialization, 'safe_globals', None)
    takes_names = stack_api.safe_globals_take_names()
    if safe_globals is None:
        assert not takes_names
        return
    # torch documents the (global, name) pairs in add_safe_globals'
    # signature where it takes them
    documented = 'tuple' in str(
        inspect.signature(torch.serialization.add_safe_globals)).lower()
    assert takes_names == documented


def test_torchscript_exporter_keywords_export_a_graph():
    kwargs = stack_api.onnx_torchscript_exporter()
    has_dynamo = 'dynamo' in inspect.signature(torch.onnx.export).parameters
    assert kwargs == (dict(dynamo=False) if has_dynamo else {})
    buffer = io.BytesIO()
    torch.onnx.export(
        nn.Conv2d(3, 2, 1).eval(), torch.zeros(1, 3, 4, 4), buffer, **kwargs)
    graph = onnx.load_from_string(buffer.getvalue()).graph
    assert [node.op_type for node in graph.node] == ['Conv']


def test_recompiles_loggers_are_dynamos():
    loggers = stack_api.recompiles_loggers()
    assert loggers and all(
        logger.name.startswith('torch._dynamo.')
        and logger.name.endswith('.__recompiles') for logger in loggers)


def test_dynamo_skip_code_exists_on_every_stack():
    # without it YOLOR's code compiles as frames of its own where a head
    # runs eagerly (correct, but more frames than the baseline: TOOD)
    assert callable(stack_api.dynamo_skip_code())


def test_compiling_probe_is_false_eagerly_and_true_where_dynamo_traces():
    probe = stack_api.compiling_probe()
    assert probe() is False

    def traced(x):
        return x + 1 if probe() else x

    compiled = torch.compile(traced, backend='eager', fullgraph=True)
    assert torch.equal(compiled(torch.zeros(1)), torch.ones(1))


class _Unlisted:
    pass


def test_safe_globals_let_the_default_load_read_what_they_list():
    buffer = io.BytesIO()
    torch.save(dict(value=_Unlisted()), buffer)
    buffer.seek(0)
    # torch.load's default, weights-only or not, as the checkpoint loader
    with stack_api.safe_globals([_Unlisted]), warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        loaded = torch.load(buffer)
    assert isinstance(loaded['value'], _Unlisted)


def test_the_onnx_default_exporter_is_read_from_the_signature():
    parameters = inspect.signature(torch.onnx.export).parameters
    defaults_to_dynamo = stack_api.onnx_export_defaults_to_dynamo()
    assert defaults_to_dynamo == ('dynamo' in parameters
                                  and parameters['dynamo'].default is True)
    if defaults_to_dynamo:  # then the TorchScript one needs choosing
        assert stack_api.onnx_torchscript_exporter() == dict(dynamo=False)


def test_dynamo_traces_map_over_iterables_or_breaks_there():
    from torch._dynamo.utils import counters

    def two_maps(x):
        return list(map(torch.add, [x, x], [x, x]))

    torch._dynamo.reset()
    counters.clear()
    torch.compile(two_maps, backend='eager')(torch.ones(1))
    breaks = sum(counters['graph_break'].values())
    torch._dynamo.reset()
    assert stack_api.dynamo_traces_map_over_iterables() == (breaks == 0)
