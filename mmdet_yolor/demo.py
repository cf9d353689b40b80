# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The main job on the embedded data: train detectors with and without
YOLOR, evaluate them, print the seed-style table with its intervals and
verdicts, and draw the differences, the curves and the detections.

``make demo`` runs :func:`run_demo` through ``tools/demo.py``. Every training
is a ``tools/train.py`` process on a config written into its work dir (the
demo config with the chosen schedule and data), so the demo exercises the
same tools a COCO run uses; the table comes from
``tools/analysis/compare.py``'s logic reading those work dirs.
"""
import math
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from . import runs
from .analysis.compare import compare, dump_json, format_report
from .analysis.forest_plot import plot_forest
from .analysis.plot import (format_implicit_summary, load_implicit_stats,
                            plot_curves, plot_implicits)
from .analysis.prediction_files import kept_prediction_file
from .analysis.predictions import plot_predictions
from .analysis.work_dirs import WorkDir, load_work_dirs
from .datasets import ensure_dataset
from .package_data import CONFIGS_ROOT, tool_path
from .toggle import YOLOR_PARTS, yolorize

# Demo configs of each detector: (baseline, YOLOR) under configs/demo/.
DEMO_CONFIGS = {
    'fcos': ('fcos_r18_fpn_6e_shapes.py', 'fcos-yolor_r18_fpn_6e_shapes.py'),
    'atss': ('atss_r18_fpn_6e_shapes.py', 'atss-yolor_r18_fpn_6e_shapes.py'),
    'faster-rcnn': ('faster-rcnn_r18_fpn_6e_shapes.py',
                    'faster-rcnn-yolor_r18_fpn_6e_shapes.py'),
    'mask-rcnn':
    ('mask-rcnn_r18_fpn_6e_shapes.py', 'mask-rcnn-yolor_r18_fpn_6e_shapes.py'),
    'sparse-rcnn': ('sparse-rcnn_r18_fpn_6e_shapes.py',
                    'sparse-rcnn-yolor_r18_fpn_6e_shapes.py'),
}
DEFAULT_DETECTORS = ('fcos', )
# What a single-seed verdict suggests: the demo with the seed interval.
MORE_SEEDS_HINT = 'make demo DEMO_ARGS="--seeds 0 1 2"'
TRAIN_TOOL = tool_path('train.py')
_PROGRESS = re.compile(r'Epoch\(train\)\s+\[(\d+)\]\[\s*(\d+)/(\d+)\]')


@dataclass
class DemoSettings:
    """What the demo runs.

    Attributes:
        detectors (list[str]): Keys of :data:`DEMO_CONFIGS`.
        seeds (list[int]): One baseline and one YOLOR run per seed.
        epochs (int, optional): Training epochs; None keeps the configs'.
        jobs (int): Trainings run at the same time, each with
            ``os.cpu_count() // jobs`` threads.
        yolor (str): The YOLOR variant (a key of ``YOLOR_PARTS``): ``'all'``
            trains the shipped YOLOR demo config, the others
            ``yolorize(baseline, ...)`` of that variant (e.g. ``foldable``).
        work_dir (str): Where the runs, table and plots go.
        data_root (str, optional): Root of the generated data; None keeps
            the configs' (``data/shapes/``).
        generator (dict): Generator parameters that override the configs'
            (``num_train``, ``num_val``, ``image_size``...).
        cfg_options (dict): Further overrides of every run's config, as
            ``--cfg-options`` of ``tools/train.py``.
    """
    detectors: Sequence[str] = DEFAULT_DETECTORS
    seeds: Sequence[int] = (0, )
    epochs: Optional[int] = None
    jobs: int = 2
    yolor: str = 'all'
    work_dir: str = 'work_dirs/demo'
    data_root: Optional[str] = None
    generator: Dict = field(default_factory=dict)
    cfg_options: Dict = field(default_factory=dict)


@dataclass
class Run:
    """One training of the demo, and how far it got."""
    name: str
    detector: str
    variant: str
    seed: int
    config: str
    work_dir: str
    total_iters: int
    done_iters: int = 0
    status: str = 'waiting'


def run_config(config_path: str, settings: DemoSettings) -> Config:
    """The demo config with the settings' epochs, data root and generator
    parameters applied consistently to every dataset and evaluator."""
    cfg = Config.fromfile(config_path)
    cfg.merge_from_dict(settings.cfg_options)
    if settings.epochs is not None:
        # The loop validates the last epoch whatever the val_interval.
        cfg.train_cfg.max_epochs = settings.epochs
        for scheduler in cfg.param_scheduler:
            if scheduler.get('by_epoch', False):
                scheduler.end = settings.epochs
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        if settings.data_root is not None:
            dataset.data_root = settings.data_root
        dataset.generator.update(settings.generator)
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = osp.join(
            cfg.val_dataloader.dataset.data_root,
            cfg.val_dataloader.dataset.ann_file)
    return cfg


def plan_runs(settings: DemoSettings) -> List[Run]:
    """Write the config of every run into its work dir; return the runs."""
    runs = []
    for detector in settings.detectors:
        if detector not in DEMO_CONFIGS:
            raise ValueError(f'unknown demo detector {detector!r}; choose '
                             f'from {sorted(DEMO_CONFIGS)}')
        for seed in settings.seeds:
            baseline_name, yolor_name = DEMO_CONFIGS[detector]
            for variant in ('baseline', 'yolor'):
                name = baseline_name
                if variant == 'yolor' and settings.yolor == 'all':
                    name = yolor_name
                cfg = run_config(
                    osp.join(CONFIGS_ROOT, 'demo', name), settings)
                if variant == 'yolor' and settings.yolor != 'all':
                    cfg = yolorize(cfg, **YOLOR_PARTS[settings.yolor])
                cfg.randomness = dict(seed=seed)
                work_dir = osp.join(settings.work_dir,
                                    f'{detector}-{variant}-seed{seed}')
                cfg.work_dir = work_dir
                os.makedirs(work_dir, exist_ok=True)
                config = osp.join(work_dir, name)
                finished = _finished(work_dir, config, cfg)
                if not finished:
                    cfg.dump(config)
                loader = cfg.train_dataloader
                iters = math.ceil(loader.dataset.generator.num_train /
                                  loader.batch_size)
                total = iters * cfg.train_cfg.max_epochs
                run = Run(f'{detector} {variant} seed {seed}', detector,
                          variant, seed, config, work_dir, total)
                if finished:
                    run.done_iters, run.status = total, 'kept'
                runs.append(run)
    return runs


def _finished(work_dir: str, config: str, cfg: Config) -> bool:
    """Whether ``work_dir`` holds a finished training of ``cfg``: the config
    ``tools/train.py`` dumped there (to ``config``) is the one it would run
    now, and the last epoch's checkpoint and the kept predictions are
    there. A demo run again keeps such a training."""
    if not (osp.isfile(config)
            and osp.isfile(osp.join(work_dir, 'last_checkpoint'))
            and kept_prediction_file(work_dir, 'val', 'bbox')):
        return False
    final = f'epoch_{cfg.train_cfg.max_epochs}.pth'
    if osp.basename(last_checkpoint(work_dir)) != final:
        return False
    with tempfile.TemporaryDirectory() as plan_dir:
        plan = osp.join(plan_dir, osp.basename(config))
        cfg.dump(plan)
        text = runs.prepare_train_config(plan, work_dir=work_dir).pretty_text
    with open(config, encoding='utf-8') as f:
        return f.read() == text


def _train(run: Run, threads: int) -> None:
    """Run ``tools/train.py`` for one run, following its progress."""
    run.status = 'training'
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1')
    process = subprocess.Popen(
        [sys.executable, TRAIN_TOOL, run.config, '--work-dir', run.work_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env)
    tail: List[str] = []
    for line in process.stdout:
        tail = (tail + [line])[-30:]
        match = _PROGRESS.search(line)
        if match:
            epoch, done, per_epoch = map(int, match.groups())
            run.done_iters = (epoch - 1) * per_epoch + done
    if process.wait() != 0:
        run.status = 'failed'
        raise RuntimeError(f'training {run.name} failed; last output:\n' +
                           ''.join(tail))
    run.done_iters = run.total_iters
    run.status = 'done'


def _format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f'{minutes}:{seconds:02d}'


def progress_line(runs: List[Run], elapsed: float) -> str:
    """One line: each run's state, overall progress, elapsed time, ETA."""
    total = sum(run.total_iters for run in runs)
    done = sum(run.done_iters for run in runs)
    fraction = done / total if total else 1.0
    eta = (elapsed * (1 - fraction) / fraction) if fraction > 0 else None
    states = ', '.join(
        f'{run.name}: {run.done_iters}/{run.total_iters}' if run.status ==
        'training' else f'{run.name}: {run.status}' for run in runs)
    return (f'[demo] {fraction:6.1%} | elapsed {_format_seconds(elapsed)} | '
            f'ETA {_format_seconds(eta) if eta is not None else "?"} | '
            f'{states}')


def train_all(runs: List[Run],
              jobs: int,
              interval: float = 30.0,
              log=print) -> None:
    """Train the runs, ``jobs`` at a time, printing progress every
    ``interval`` seconds."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    start = time.time()
    finished = threading.Event()
    with ThreadPoolExecutor(jobs) as pool:
        futures = [
            pool.submit(_train, run, threads) for run in runs
            if run.status != 'kept'
        ]

        def report():
            while not finished.wait(interval):
                log(progress_line(runs, time.time() - start))

        reporter = threading.Thread(target=report, daemon=True)
        reporter.start()
        try:
            for future in futures:
                future.result()
        finally:
            finished.set()
    log(progress_line(runs, time.time() - start))


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint a finished training saved last."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def prediction_models(runs: List[Run],
                      work_dirs: List[WorkDir]) -> Dict[str, Tuple[str, str]]:
    """Column title and ``(config, checkpoint)`` of the runs of the first
    seed, baseline before YOLOR of each detector, for
    :func:`~mmdet_yolor.analysis.predictions.plot_predictions`.

    Args:
        runs (list[Run]): The finished runs.
        work_dirs (list[WorkDir]): Their work dirs, in the same order.
    """
    seed = runs[0].seed
    return {
        f'{work_dir.detector} {work_dir.variant}, seed {seed}':
        (run.config, last_checkpoint(run.work_dir))
        for run, work_dir in zip(runs, work_dirs) if run.seed == seed
    }


def run_demo(settings: DemoSettings, log=print) -> str:
    """Generate the data, train every run (keeping the finished trainings
    of an earlier demo with the same settings), then write and return the
    report: the table, its intervals and the verdicts.

    Writes ``results.md``, ``results.json``, ``forest.png``, ``curves.png``,
    ``predictions.png`` and ``implicit_<detector>.png`` into
    ``settings.work_dir``.
    """
    start = time.time()
    runs = plan_runs(settings)
    data = Config.fromfile(runs[0].config).train_dataloader.dataset
    log(f'[demo] data: {data.data_root} (generated on first use)')
    ensure_dataset(data.data_root, **data.generator)
    kept = sum(run.status == 'kept' for run in runs)
    log(f'[demo] {len(runs)} trainings, {settings.jobs} at a time, in '
        f'{settings.work_dir}' +
        (f' ({kept} finished before: kept)' if kept else ''))
    train_all(runs, settings.jobs, log=log)

    comparisons = compare([run.work_dir for run in runs],
                          more_seeds_hint=MORE_SEEDS_HINT,
                          log=log)
    table = format_report(comparisons)
    with open(osp.join(settings.work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    dump_json(comparisons, osp.join(settings.work_dir, 'results.json'))
    plot_forest(comparisons, osp.join(settings.work_dir, 'forest.png'))
    work_dirs = load_work_dirs([run.work_dir for run in runs])
    plot_curves(work_dirs, osp.join(settings.work_dir, 'curves.png'))
    plot_predictions(
        prediction_models(runs, work_dirs),
        osp.join(settings.work_dir, 'predictions.png'))
    for detector in settings.detectors:
        yolor = next(run for run in runs
                     if run.detector == detector and run.variant == 'yolor')
        stats = load_implicit_stats(yolor.config,
                                    last_checkpoint(yolor.work_dir))
        plot_implicits(stats,
                       osp.join(settings.work_dir, f'implicit_{detector}.png'))
        with open(
                osp.join(settings.work_dir, f'implicit_{detector}.txt'),
                'w') as f:
            f.write(format_implicit_summary(stats) + '\n')
    log(f'[demo] finished in {_format_seconds(time.time() - start)}; '
        f'table, forest plot, curves, predictions and implicit plots in '
        f'{settings.work_dir}')
    return table
