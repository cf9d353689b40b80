# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The sweep's compile column: how a config's baseline, its YOLOR form and
the folded YOLOR form fare under ``torch.compile``.

Each is compiled with dynamo's ``eager`` backend (the same frames and graph
breaks as inductor, without its compile time) and called on the row's
generated images; :func:`~yolor_dev.compiling.count_compilation` counts the
frames, graph breaks and recompiles. The YOLOR form holds the baseline's
weights with identity implicits, so that both compute the same values and
take the same data-dependent branches (how many boxes survive an NMS): what
differs is YOLOR's code alone.
"""
import copy
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import torch
from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmdet_yolor import fuse_implicit, yolorize
from mmdet_yolor.analysis.config_check.inputs import (eval_batch,
                                                      generate_samples,
                                                      image_shapes, input_spec)
from mmdet_yolor.analysis.config_check.machine import (adapt_to_machine,
                                                       check_in_scope)
from mmdet_yolor.analysis.config_check.row import (BASELINE_ERROR, KILLED,
                                                   NOT_RUNNABLE, TIMEOUT,
                                                   baseline_failed, error_line,
                                                   quiet_logs)
from mmdet_yolor.analysis.config_check.settings import SweepSettings
from mmdet_yolor.analysis.config_check.steps import build_model
from yolor_dev.compiling import CompileCounts, count_compilation

# Compile statuses (besides the check rows' n/a, baseline error, timeout and
# killed): YOLOR compiles like its baseline; it needs more frames, graph
# breaks or recompiles, fails to compile, or its compiled outputs differ
# from eager ones; the baseline itself does not compile.
COMPILES_LIKE_BASELINE = 'ok'
WORSE = 'worse'
BASELINE_DOES_NOT_COMPILE = 'baseline does not compile'
COMPILE_STATUSES = (COMPILES_LIKE_BASELINE, WORSE, BASELINE_DOES_NOT_COMPILE,
                    BASELINE_ERROR, TIMEOUT, KILLED, NOT_RUNNABLE)
# The variants compiled, in the order of the column.
VARIANTS = ('baseline', 'YOLOR', 'folded')
# Compiled outputs may differ from eager ones by float re-association only.
MAX_ERROR = 1e-4


@dataclass
class CompileRow:
    """How one config compiles.

    Attributes:
        folder (str): Algorithm folder of mmdet's configs.
        config (str): Config file name.
        status (str): One of :data:`COMPILE_STATUSES`.
        reason (str): Why the row is not ``ok``.
        mode (str): The forward compiled: ``'tensor'`` (raw head outputs),
            or ``'predict'`` for a detector without a tensor mode.
        counts (dict[str, list[int]]): ``[frames, graph breaks,
            recompiles]`` of each variant compiled (:data:`VARIANTS`).
        max_error (dict[str, float]): Largest difference of each variant's
            compiled outputs from its eager ones, relative to their largest
            value.
        seconds (float): Run time of the row.
        torch (str): Version of the torch the row ran on.
    """
    folder: str
    config: str
    status: str = ''
    reason: str = ''
    mode: str = 'tensor'
    counts: Dict[str, list] = field(default_factory=dict)
    max_error: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    torch: str = ''

    def counts_of(self, variant: str) -> Optional[Tuple[int, int, int]]:
        """``(frames, graph breaks, recompiles)`` of ``variant``, or None
        where it was not compiled."""
        counts = self.counts.get(variant)
        return tuple(counts) if counts is not None else None


def compile_config(cfg: Config, folder: str, name: str,
                   settings: SweepSettings) -> CompileRow:
    """Compile ``cfg``'s baseline, YOLOR form and folded YOLOR form in this
    process and compare their counts (see the module's docstring).

    Args:
        cfg (Config): A loaded mmdet config (not modified).
        folder (str): Its folder in mmdet's configs, for the row.
        name (str): Its file name, for the row.
        settings (SweepSettings): The sweep's settings (its images).

    Returns:
        CompileRow: The row; exceptions become its status.
    """
    register_all_modules()
    quiet_logs()
    start = time.perf_counter()
    row = CompileRow(folder, name)
    try:
        with tempfile.TemporaryDirectory(prefix='compile_row_') as work_dir:
            _compile_variants(copy.deepcopy(cfg), settings, row, work_dir)
    finally:
        row.seconds = time.perf_counter() - start
    return row


def _compile_variants(cfg: Config, settings: SweepSettings, row: CompileRow,
                      work_dir: str) -> None:
    try:
        check_in_scope(cfg)
        shapes = image_shapes(cfg, settings)
        adapt_to_machine(cfg, shapes, work_dir)
        baseline = build_model(cfg, settings.seed)
        baseline.eval()  # not chained: LAD's and LD's train() return None
        batch = generate_samples(input_spec(cfg, baseline), shapes, settings)
        data = baseline.data_preprocessor(eval_batch(batch), False)
        row.mode, forward = _forward(baseline, data)
    except Exception as error:
        baseline_failed(row, error)
        return
    try:
        _count(row, 'baseline', forward(baseline), data)
    except Exception as error:
        row.status = BASELINE_DOES_NOT_COMPILE
        row.reason = error_line(error)
        return
    try:
        model = build_model(
            yolorize(cfg, implicit_cfg=dict(init='identity')), settings.seed)
        model.load_state_dict(baseline.state_dict(), strict=False)
        del baseline
        model.eval()
        _count(row, 'YOLOR', forward(model), data)
        model = fuse_implicit(model, logger='silent')
        _count(row, 'folded', forward(model), data)
    except Exception as error:
        variant = 'folded' if 'YOLOR' in row.counts else 'YOLOR'
        row.status = WORSE
        row.reason = f'{variant}: {error_line(error)}'
        return
    judge(row)


def _forward(model: torch.nn.Module, data: dict) -> Tuple[str, Callable]:
    """The mode compiled and a function that makes ``model``'s forward in
    it a function of the input images: ``mode='tensor'``, or
    ``'predict'`` where the eager tensor forward raises."""
    samples = data['data_samples']
    for mode in ('tensor', 'predict'):
        try:
            with torch.no_grad():
                model(data['inputs'], copy.deepcopy(samples), mode=mode)
        except Exception:
            if mode == 'predict':
                raise
            continue
        break

    def forward(detector):
        return lambda inputs: detector(
            inputs, copy.deepcopy(samples), mode=mode)

    return mode, forward


def _count(row: CompileRow, variant: str, function: Callable,
           data: dict) -> None:
    counts: CompileCounts = count_compilation(function, data['inputs'])
    row.counts[variant] = [
        counts.frames, counts.graph_breaks, counts.recompiles
    ]
    row.max_error[variant] = counts.max_error


def judge(row: CompileRow) -> None:
    """``ok`` if neither YOLOR variant needs more frames, graph breaks or
    recompiles than the baseline and their compiled outputs match eager
    ones."""
    baseline = row.counts_of('baseline')
    problems = []
    for variant in VARIANTS[1:]:
        counts = row.counts_of(variant)
        more = [
            f'{what} {theirs} > {base}'
            for what, theirs, base in zip(('frames', 'graph breaks',
                                           'recompiles'), counts, baseline)
            if theirs > base
        ]
        if more:
            problems.append(f'{variant}: {", ".join(more)}')
        if row.max_error[variant] > MAX_ERROR:
            problems.append(f'{variant}: compiled outputs differ from eager '
                            f'ones by {row.max_error[variant]:.1e}')
    row.status = WORSE if problems else COMPILES_LIKE_BASELINE
    row.reason = '; '.join(problems)
