# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Running the sweep: each config in its own process with a time limit,
one or more at a time, every finished row appended to a JSON-lines file
that a stopped sweep resumes from. A row is a config's check
(:class:`SweepRow`) or its compile measurement (:class:`.CompileRow`)."""
import json
import multiprocessing
import os
import os.path as osp
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from mmdet_yolor.analysis.config_check.machine import not_runnable_reason
from mmdet_yolor.analysis.config_check.row import (BASELINE_ERROR, KILLED,
                                                   NOT_RUNNABLE, TIMEOUT,
                                                   SweepRow, error_line,
                                                   sweep_config)
from mmdet_yolor.analysis.config_check.settings import SweepSettings

from .compile_row import CompileRow, compile_config
from .configs import ConfigSpec
from .report import format_duration


class RowKind(NamedTuple):
    """What a sweep's row is: the row's class, and the function that makes
    one from a loaded config, ``(cfg, folder, name, settings) -> row``."""
    row_type: type
    run: Callable


CHECK = RowKind(SweepRow, sweep_config)
COMPILE = RowKind(CompileRow, compile_config)


def _row_process(spec: ConfigSpec, settings: SweepSettings, kind: RowKind,
                 threads: int, log_path: str, connection) -> None:
    """The body of a row's own process: output to ``log_path``, the row
    back through ``connection``."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    warnings.simplefilter('ignore')
    torch.set_num_threads(threads)
    connection.send(run_row(spec, settings, kind))


def run_row(spec: ConfigSpec, settings: SweepSettings, kind: RowKind = CHECK):
    """Load ``spec``'s config and make its row of ``kind`` in this
    process."""
    start = time.perf_counter()
    try:
        cfg = Config.fromfile(spec.path)
    except Exception as error:
        reason = not_runnable_reason(error)
        return kind.row_type(
            spec.folder,
            spec.name,
            NOT_RUNNABLE if reason else BASELINE_ERROR,
            reason or f'config does not load: {error_line(error)}',
            seconds=time.perf_counter() - start)
    return kind.run(cfg, spec.folder, spec.name, settings)


def run_row_isolated(spec: ConfigSpec,
                     settings: SweepSettings,
                     kind: RowKind = CHECK,
                     threads: Optional[int] = None):
    """Make ``spec``'s row of ``kind`` in its own process with ``threads``
    torch threads (default: this process's), killed after
    ``settings.timeout`` seconds: a segfault, leak or hang costs one row."""
    context = multiprocessing.get_context('spawn')
    receiver, sender = context.Pipe(duplex=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = osp.join(tmp, 'row.log')
        process = context.Process(
            target=_row_process,
            args=(spec, settings, kind, threads
                  or torch.get_num_threads(), log_path, sender))
        process.start()
        sender.close()
        row = None
        if receiver.poll(settings.timeout):
            try:
                row = receiver.recv()
            except EOFError:  # died before sending
                pass
        if process.is_alive():
            process.kill()
        process.join()
        if row is not None:
            return row
        seconds = time.perf_counter() - start
        if seconds >= settings.timeout:
            return kind.row_type(
                spec.folder,
                spec.name,
                TIMEOUT,
                f'killed after {settings.timeout:.0f} s',
                seconds=seconds)
        return kind.row_type(
            spec.folder,
            spec.name,
            KILLED, f'process died (exit code {process.exitcode}): '
            f'{_last_line(log_path)}',
            seconds=seconds)


def _last_line(path: str) -> str:
    if not osp.isfile(path):
        return 'no output'
    with open(path, errors='replace') as f:
        lines = [line.strip() for line in f if line.strip()]
    return lines[-1][:200] if lines else 'no output'


def load_rows(path: str,
              kind: RowKind = CHECK) -> Dict[Tuple[str, str], object]:
    """The rows of ``kind`` saved in the JSON-lines file ``path`` (see
    :func:`run_sweep`) by ``(folder, config)``; the last one of each wins.
    Empty if the file does not exist."""
    rows = {}
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    row = kind.row_type(**json.loads(line))
                    if kind.row_type is SweepRow:
                        row.folded = tuple(row.folded) if row.folded else None
                    rows[row.folder, row.config] = row
    return rows


def run_sweep(specs: Sequence[ConfigSpec],
              settings: SweepSettings,
              isolated: bool = True,
              progress: Optional[Callable[[str], None]] = print,
              rows_file: Optional[str] = None,
              resume: bool = False,
              kind: RowKind = CHECK,
              jobs: int = 1) -> list:
    """Make the rows of ``specs``.

    Args:
        specs (Sequence[ConfigSpec]): The configs.
        settings (SweepSettings): How to exercise them.
        isolated (bool): Run each in its own process
            (:func:`run_row_isolated`). Defaults to True.
        progress (callable, optional): Called with one line per finished
            row: position, folder, config, status, time and the estimated
            time left. Defaults to ``print``.
        rows_file (str, optional): A JSON-lines file each finished row is
            appended to. Defaults to None.
        resume (bool): Take the rows of configs already in ``rows_file``
            from there instead of running them again (to go on with a
            sweep that was stopped, or to rerun a few configs after
            deleting their lines). Defaults to False.
        kind (RowKind): The rows made: :data:`CHECK` (the default) or
            :data:`COMPILE`.
        jobs (int): Rows run at once, each in its own process with an even
            share of this process's torch threads (isolated only).
            Defaults to 1.
    """
    done = load_rows(rows_file, kind) if resume and rows_file else {}
    todo = [spec for spec in specs if (spec.folder, spec.name) not in done]
    if done and progress is not None:
        progress(f'{len(specs) - len(todo)} configs taken from {rows_file}')
    if isolated:
        threads = max(1, torch.get_num_threads() // jobs)

        def make_row(spec):
            return run_row_isolated(spec, settings, kind, threads)
    else:
        jobs = 1

        def make_row(spec):
            return run_row(spec, settings, kind)

    new = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        for index, (spec,
                    row) in enumerate(zip(todo, pool.map(make_row, todo)), 1):
            row.torch = torch.__version__  # the rows' processes run this one
            new[spec.folder, spec.name] = row
            if rows_file:
                with open(rows_file, 'a') as f:
                    f.write(json.dumps(asdict(row)) + '\n')
            if progress is not None:
                elapsed = time.perf_counter() - start
                left = elapsed / index * (len(todo) - index)
                width = len(str(len(todo)))
                progress(f'[{index:{width}d}/{len(todo)}] {spec.folder} '
                         f'{spec.name} ... {row.status} {row.seconds:.1f}s, '
                         f'ETA {format_duration(left)}')
    return [
        new.get((spec.folder, spec.name)) or done[spec.folder, spec.name]
        for spec in specs
    ]
