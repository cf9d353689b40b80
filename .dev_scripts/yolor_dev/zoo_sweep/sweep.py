# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Running the sweep: each config in its own process with a time limit,
every finished row appended to a JSON-lines file that a stopped sweep
resumes from."""
import json
import multiprocessing
import os
import os.path as osp
import tempfile
import time
import warnings
from dataclasses import asdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from mmdet_yolor.analysis.config_check.machine import not_runnable_reason
from mmdet_yolor.analysis.config_check.row import (BASELINE_ERROR, KILLED,
                                                   NOT_RUNNABLE, TIMEOUT,
                                                   SweepRow, error_line,
                                                   sweep_config)
from mmdet_yolor.analysis.config_check.settings import SweepSettings

from .configs import ConfigSpec
from .report import format_duration


def _row_process(spec: ConfigSpec, settings: SweepSettings, log_path: str,
                 connection) -> None:
    """The body of a row's own process: output to ``log_path``, the row
    back through ``connection``."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 1)
    os.dup2(log, 2)
    warnings.simplefilter('ignore')
    connection.send(run_row(spec, settings))


def run_row(spec: ConfigSpec, settings: SweepSettings) -> SweepRow:
    """Load ``spec``'s config and sweep it in this process."""
    start = time.perf_counter()
    try:
        cfg = Config.fromfile(spec.path)
    except Exception as error:
        reason = not_runnable_reason(error)
        return SweepRow(
            spec.folder,
            spec.name,
            NOT_RUNNABLE if reason else BASELINE_ERROR,
            reason or f'config does not load: {error_line(error)}',
            seconds=time.perf_counter() - start)
    return sweep_config(cfg, spec.folder, spec.name, settings)


def run_row_isolated(spec: ConfigSpec, settings: SweepSettings) -> SweepRow:
    """Sweep ``spec``'s config in its own process, killed after
    ``settings.timeout`` seconds: a segfault, leak or hang costs one row."""
    context = multiprocessing.get_context('spawn')
    receiver, sender = context.Pipe(duplex=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = osp.join(tmp, 'row.log')
        process = context.Process(
            target=_row_process, args=(spec, settings, log_path, sender))
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
            return SweepRow(
                spec.folder,
                spec.name,
                TIMEOUT,
                f'killed after {settings.timeout:.0f} s',
                seconds=seconds)
        return SweepRow(
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


def load_rows(path: str) -> Dict[Tuple[str, str], SweepRow]:
    """The rows saved in the JSON-lines file ``path`` (see
    :func:`run_sweep`) by ``(folder, config)``; the last one of each wins.
    Empty if the file does not exist."""
    rows = {}
    if osp.isfile(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    row = SweepRow(**json.loads(line))
                    row.folded = tuple(row.folded) if row.folded else None
                    rows[row.folder, row.config] = row
    return rows


def run_sweep(specs: Sequence[ConfigSpec],
              settings: SweepSettings,
              isolated: bool = True,
              progress: Optional[Callable[[str], None]] = print,
              rows_file: Optional[str] = None,
              resume: bool = False) -> List[SweepRow]:
    """Sweep ``specs`` one after the other.

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
    """
    done = load_rows(rows_file) if resume and rows_file else {}
    todo = [spec for spec in specs if (spec.folder, spec.name) not in done]
    if done and progress is not None:
        progress(f'{len(specs) - len(todo)} configs taken from {rows_file}')
    new = {}
    start = time.perf_counter()
    for index, spec in enumerate(todo, 1):
        row = (run_row_isolated if isolated else run_row)(spec, settings)
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
