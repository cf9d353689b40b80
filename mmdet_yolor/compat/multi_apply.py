# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fix ``multi_apply``: mmdet's dense heads compile in one graph where dynamo
cannot trace ``map`` over several iterables (the probe finds it on torch
2.1.2 and 2.4.1, not on 2.13).

mmdet's ``multi_apply`` runs a head's levels with ``map(func, *args)``. Where
dynamo cannot trace that (``incorrect arg count ... call_map``), every dense
head breaks its graph there, each level compiles as a frame of its own and
recompiles for the next (FCOS on torch 2.1: 14 frames, 6 graph breaks, 5
recompiles). The fix gives ``multi_apply`` the same computation over
``zip`` (same calls in the same order, same results), which dynamo traces:
FCOS, ATSS and RetinaNet compile to one frame, with or without YOLOR. It
swaps the function's code in place, so the modules that imported
``multi_apply`` by name get it too. The probe compiles a two-line function,
so it runs when dynamo is first imported (importing the plugin does not
import it).
"""
from functools import partial

from mmdet.models.utils import misc as mmdet_misc

from ..stack_api import dynamo_traces_map_over_iterables
from .registry import Fix


def dynamo_breaks_at_map() -> bool:
    """Whether dynamo fails to trace ``map`` over two iterables in one
    graph."""
    return not dynamo_traces_map_over_iterables()


def _multi_apply_over_zip(func, *args, **kwargs):
    """mmdet's ``multi_apply`` with ``zip`` in place of ``map(func, *args)``;
    its code runs with the globals of mmdet's function, which imports
    ``partial`` as this module does."""
    pfunc = partial(func, **kwargs) if kwargs else func
    map_results = [pfunc(*level_args) for level_args in zip(*args)]
    return tuple(map(list, zip(*map_results)))


def trace_multi_apply() -> None:
    """Give mmdet's ``multi_apply`` the code of
    :func:`_multi_apply_over_zip`; its name, its globals (``partial``) and
    every reference to it stay."""
    stock = mmdet_misc.multi_apply.__code__
    names = {
        field: getattr(stock, field)
        for field in ('co_name', 'co_qualname')  # co_qualname: Python 3.11
        if hasattr(stock, field)
    }
    mmdet_misc.multi_apply.__code__ = _multi_apply_over_zip.__code__.replace(
        **names)


FIX = Fix(
    name='multi_apply',
    defect="dynamo cannot trace map() over several iterables, so mmdet's "
    'multi_apply breaks the graph of every dense head at each level',
    probe=dynamo_breaks_at_map,
    apply=trace_multi_apply,
    probe_after_import='torch._dynamo')
