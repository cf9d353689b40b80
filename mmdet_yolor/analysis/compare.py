# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Compare baseline and YOLOR training runs in a table like the YOLOR
authors' MMDetection table, and say whether the difference is real.

Each work dir contributes its final validation metrics. Work dirs of the same
detector, experiment and variant are seeds of one row, reported as mean ±
sample standard deviation. An experiment is the config name without the
YOLOR marker (:func:`~mmdet_yolor.analysis.work_dirs.experiment_name`), so
``faster-rcnn_r50_fpn_1x_coco.py``, ``faster-rcnn-yolor_r50_fpn_1x_coco.py``
and ``tools/train.py faster-rcnn_r50_fpn_1x_coco.py --yolor`` runs compare
with each other.

Baseline and YOLOR runs of the same ``randomness.seed`` are paired
(:mod:`.seed_statistics`): with two or more pairs, a Student-t interval of
the mean difference measures training noise. Where both runs of a pair kept
their predictions (``<work_dir>/predictions/val.bbox.json``, as
``tools/train.py`` keeps them), a paired bootstrap over the validation
images (:mod:`.image_bootstrap`) measures test-set sampling for that seed.
Each comparison ends in a verdict on box AP.
"""
import json
import os.path as osp
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..errors import InputError
from .image_bootstrap import (DEFAULT_RESAMPLES, MetricDelta, bootstrap_files,
                              points)
from .prediction_files import kept_prediction_file
from .seed_statistics import (SeedDelta, interval_verdict, seed_delta,
                              seed_label, seeds_needed, t_interval)
from .work_dirs import WorkDir, WorkDirError, load_work_dirs

# (metric name without prefix, column header) of every table column.
TABLE_METRICS: Tuple[Tuple[str, str], ...] = (
    ('bbox_mAP', 'AP<sup>box</sup>'),
    ('bbox_mAP_50', 'AP<sub>50</sub><sup>box</sup>'),
    ('bbox_mAP_75', 'AP<sub>75</sub><sup>box</sup>'),
    ('segm_mAP', 'AP<sup>mask</sup>'),
    ('segm_mAP_50', 'AP<sub>50</sub><sup>mask</sup>'),
    ('segm_mAP_75', 'AP<sub>75</sub><sup>mask</sup>'),
)
# Every row needs at least this metric; the verdict is on it.
REQUIRED_METRIC = 'bbox_mAP'
# What the verdict of a single seed suggests, unless the caller knows the
# command that trains more seeds (the demo, the Slurm seed tables).
MORE_SEEDS_HINT = ('train seeds 1 and 2 of both configs too (tools/train.py '
                   '... --cfg-options randomness.seed=N) and compare every '
                   'work dir')
# A kept prediction file must reproduce the logged metric to this
# tolerance (mmdet logs 3 decimals).
LOGGED_TOLERANCE = 6e-4


def ap_points(value: float) -> float:
    """A metric as logged (0.3746) in AP points as printed (37.5)."""
    return round(value * 100, 1)


@dataclass
class MetricSummary:
    """One metric over the seeds of a row.

    Attributes:
        values (list[float]): The metric of each seed, as logged (0-1).
        mean (float): Their mean, as logged (0-1).
        std (float, optional): Their sample standard deviation (ddof=1),
            as logged; None with a single seed.
    """
    values: List[float]
    mean: float
    std: Optional[float]

    @classmethod
    def of(cls, values: List[float]) -> 'MetricSummary':
        """Summarise the values of the seeds."""
        std = statistics.stdev(values) if len(values) > 1 else None
        return cls(list(values), statistics.mean(values), std)


@dataclass
class Row:
    """The seeds of one detector, experiment and variant.

    Attributes:
        detector (str): Display name, e.g. ``'Faster R-CNN'``.
        experiment (str): Config name without the YOLOR marker.
        yolor (bool): Whether the runs are YOLOR runs.
        work_dirs (list[str]): The work dir of each seed.
        metrics (dict[str, MetricSummary]): Table metrics every seed has,
            keyed without prefix (``bbox_mAP``, ``segm_mAP_50``, ...).
    """
    detector: str
    experiment: str
    yolor: bool
    work_dirs: List[str]
    metrics: Dict[str, MetricSummary]

    @property
    def seeds(self) -> int:
        """Number of seeds (work dirs)."""
        return len(self.work_dirs)


@dataclass
class Comparison:
    """Baseline and YOLOR rows of one detector and experiment.

    Attributes:
        detector (str): Display name of the detector.
        experiment (str): Config name without the YOLOR marker.
        baseline (Row, optional): The baseline row, if any run was given.
        yolor (Row, optional): The YOLOR row, if any run was given.
        delta (dict[str, float | None], optional): Per table metric, in AP
            points: the mean of the paired differences where every run is
            paired by seed (as the verdict and the seed interval have it),
            else the YOLOR mean minus the baseline mean, both as printed;
            None for a metric one side lacks. None unless both rows exist.
        pairing (str): How the runs were paired by seed, and which were
            left unpaired.
        seed_deltas (dict[str, SeedDelta]): Per table metric both sides
            have, the paired differences over seeds (as logged, 0-1);
            empty if no run could be paired.
        image_intervals (dict[str, dict[str, MetricDelta]]): Per paired
            seed (its :func:`~.seed_statistics.seed_label`), the image
            bootstrap of each metric.
        notes (list[str]): Why a pair has no image interval.
        verdict (str, optional): Whether YOLOR's box AP difference is real;
            None unless both rows exist.
    """
    detector: str
    experiment: str
    baseline: Optional[Row] = None
    yolor: Optional[Row] = None
    delta: Optional[Dict[str, Optional[float]]] = field(default=None)
    pairing: str = ''
    seed_deltas: Dict[str, SeedDelta] = field(default_factory=dict)
    image_intervals: Dict[str, Dict[str,
                                    MetricDelta]] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    verdict: Optional[str] = None


def summarize_row(work_dirs: Sequence[WorkDir]) -> Row:
    """Summarise the final metrics of the seeds of one row.

    Raises:
        WorkDirError: If a seed has no validation metrics or no box AP, or
            the seeds do not all report the same table metrics.
    """
    first = work_dirs[0]
    finals = [work_dir.final_metrics() for work_dir in work_dirs]
    for work_dir, final in zip(work_dirs, finals):
        if REQUIRED_METRIC not in final:
            raise WorkDirError(
                f'{work_dir.path}: its last validation has no '
                f'{REQUIRED_METRIC} (metrics: {", ".join(final)}); compare '
                f'needs COCO-style box metrics (CocoMetric).')
    metrics = {}
    for name, _ in TABLE_METRICS:
        having = [final for final in finals if name in final]
        if having and len(having) < len(finals):
            missing = [
                w.path for w, f in zip(work_dirs, finals) if name not in f
            ]
            raise WorkDirError(
                f'the seeds of {first.detector} {first.variant} '
                f'({first.experiment}) differ: {", ".join(missing)} lack '
                f'{name} that the others report. Pass runs of the same '
                f'config as seeds.')
        if having:
            metrics[name] = MetricSummary.of([final[name] for final in finals])
    return Row(first.detector, first.experiment, first.yolor,
               [work_dir.path for work_dir in work_dirs], metrics)


def _delta(baseline: Row, yolor: Row) -> Dict[str, Optional[float]]:
    delta = {}
    for name, _ in TABLE_METRICS:
        if name in baseline.metrics and name in yolor.metrics:
            difference = round(
                ap_points(yolor.metrics[name].mean) -
                ap_points(baseline.metrics[name].mean), 1)
            delta[name] = difference + 0.0  # no '-0.0'
        else:
            delta[name] = None
    return delta


def pair_seeds(
    baseline: Sequence[WorkDir], yolor: Sequence[WorkDir]
) -> Tuple[List[Tuple[Optional[int], WorkDir, WorkDir]], str]:
    """Pair the baseline and YOLOR runs of one comparison by seed.

    Runs that all set ``randomness.seed`` pair by it; runs that set none
    pair in the order given when both sides have as many.

    Returns:
        tuple: ``(seed, baseline, yolor)`` of each pair (seed None where
        the runs pair in order), and a sentence on how they were paired
        (empty where every run paired by seed).

    Raises:
        WorkDirError: If two runs of one variant have the same seed.
    """
    runs = list(baseline) + list(yolor)
    if all(run.seed is not None for run in runs):
        by_seed: Dict[bool, Dict[int, WorkDir]] = {False: {}, True: {}}
        for run in runs:
            same = by_seed[run.yolor].get(run.seed)
            if same is not None:
                raise WorkDirError(
                    f'{same.path} and {run.path} are both {run.variant} runs '
                    f'of {run.experiment} with seed {run.seed}; pass one '
                    f'work dir per seed and variant.')
            by_seed[run.yolor][run.seed] = run
        common = sorted(set(by_seed[False]) & set(by_seed[True]))
        pairs = [(seed, by_seed[False][seed], by_seed[True][seed])
                 for seed in common]
        lone = [run.path for run in runs if run.seed not in common]
        note = (f'unpaired (no run of the other variant with their seed): '
                f'{", ".join(lone)}') if lone else ''
        return pairs, note
    if len(baseline) == len(yolor):
        return ([(None, b, y) for b, y in zip(baseline, yolor)],
                'paired in the order given: the configs set no '
                'randomness.seed')
    return [], (f'not paired: {len(baseline)} baseline and {len(yolor)} YOLOR '
                f'runs, and the configs set no randomness.seed')


def image_interval(baseline: WorkDir,
                   yolor: WorkDir,
                   resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0) -> Tuple[Dict[str, MetricDelta], str]:
    """The image bootstrap of one pair from the predictions their last
    validations kept.

    Returns:
        tuple: The metrics (empty if there is no interval) and, if empty,
        the reason.
    """
    ann_file = baseline.val_ann_file
    if ann_file is None or ann_file != yolor.val_ann_file:
        return {}, ('no image interval: the two runs do not validate with a '
                    'CocoMetric on the same annotation file')
    if not osp.isfile(ann_file):
        return {}, (f'no image interval: the annotation file {ann_file} of '
                    f'their configs is not found from here (run compare '
                    f'where the training ran)')
    iou_types = [
        iou_type for iou_type in ('bbox', 'segm')
        if kept_prediction_file(baseline.path, 'val', iou_type)
        and kept_prediction_file(yolor.path, 'val', iou_type)
    ]
    if 'bbox' not in iou_types:
        return {}, (f'no image interval: {baseline.path} and {yolor.path} '
                    f'did not both keep their predictions '
                    f'(predictions/val.bbox.json; tools/train.py keeps them)')
    metrics: Dict[str, MetricDelta] = {}
    # CocoMetric keeps boxes and masks in files of their own
    for iou_type in iou_types:
        metrics.update(
            bootstrap_files(
                ann_file,
                kept_prediction_file(baseline.path, 'val', iou_type),
                kept_prediction_file(yolor.path, 'val', iou_type), [iou_type],
                resamples=resamples,
                seed=seed).metrics)
    for run, side in ((baseline, 'baseline'), (yolor, 'yolor')):
        logged = run.final_metrics().get(REQUIRED_METRIC)
        kept = getattr(metrics[REQUIRED_METRIC], side)
        if logged is not None and abs(logged - kept) > LOGGED_TOLERANCE:
            return {}, (f'no image interval: the predictions {run.path} kept '
                        f'give {REQUIRED_METRIC} {kept:.3f}, its last '
                        f'validation logged {logged:.3f}; they are of '
                        f'another checkpoint')
    return metrics, ''


def verdict(comparison: Comparison,
            more_seeds_hint: str = MORE_SEEDS_HINT) -> str:
    """One sentence on whether YOLOR's box AP difference is real: from the
    seed interval with two or more pairs, else saying that training noise
    is unmeasured (with the image interval, if any) and how to measure
    it."""
    paired = comparison.seed_deltas.get(REQUIRED_METRIC)
    if paired is None:
        return (f'no verdict: {comparison.pairing}; pair the runs by seed '
                f'(randomness.seed)')
    noun = 'seed' if paired.pairs == 1 else 'seeds'
    measured = f'Δ box AP {points(paired.mean, True)}'
    if paired.std is not None:
        measured += f' (sd {paired.std * 100:.1f})'

    if paired.ci95 is None:
        images = comparison.image_intervals.get(seed_label(paired.seeds[0], 0))
        over_images = ''
        if images:
            box = images[REQUIRED_METRIC]
            side = interval_verdict(box.ci95)
            over_images = (
                f'; over images 95 % CI {_interval(box.ci95)} '
                f'({"beyond" if side else "within"} test-set sampling)')
        return (f'training noise unmeasured with 1 seed ({measured}'
                f'{over_images}); seeds alone move AP by as much, so '
                f'measure it: {more_seeds_hint}')
    interval = f'95 % CI over {paired.pairs} {noun} {_interval(paired.ci95)}'
    side = interval_verdict(paired.ci95)
    if side is not None:
        return f'{side}: {measured}, {interval}'
    needed = seeds_needed(paired.mean, paired.std)
    if needed is None:
        more = 'no feasible number of seeds would detect a Δ of this size'
    else:
        more = f'about {needed} seeds would detect a Δ of this size'
    return (f'no difference detectable with {paired.pairs} {noun}: '
            f'{measured}, {interval}; {more}')


def _interval(ci95: Sequence[float]) -> str:
    return f'[{points(ci95[0], True)}, {points(ci95[1], True)}]'


def compare_work_dirs(
        work_dirs: Sequence[WorkDir],
        resamples: int = DEFAULT_RESAMPLES,
        bootstrap_seed: int = 0,
        require_seed_interval: bool = False,
        more_seeds_hint: str = MORE_SEEDS_HINT,
        log: Callable[[str], None] = lambda line: None) -> List[Comparison]:
    """Group work dirs into comparisons by (detector, experiment), in order
    of first appearance, summarise their rows, pair their seeds and give
    each a verdict.

    Args:
        work_dirs (Sequence[WorkDir]): The runs.
        resamples (int): Resamples of each image interval; 0 skips them.
        bootstrap_seed (int): Seed of the image resampling.
        require_seed_interval (bool): Fail unless every comparison has at
            least two paired seeds.
        more_seeds_hint (str): What a single-seed verdict suggests.
        log (callable): Told of each image bootstrap.

    Raises:
        InputError: If ``require_seed_interval`` and a comparison has
            fewer than two pairs.
    """
    seeds: Dict[Tuple[str, str], Dict[bool, List[WorkDir]]] = {}
    for work_dir in work_dirs:
        variants = seeds.setdefault((work_dir.detector, work_dir.experiment),
                                    {})
        variants.setdefault(work_dir.yolor, []).append(work_dir)
    comparisons = []
    for (detector, experiment), variants in seeds.items():
        comparison = Comparison(detector, experiment)
        if False in variants:
            comparison.baseline = summarize_row(variants[False])
        if True in variants:
            comparison.yolor = summarize_row(variants[True])
        if comparison.baseline and comparison.yolor:
            comparison.delta = _delta(comparison.baseline, comparison.yolor)
            pairs, comparison.pairing = pair_seeds(variants[False],
                                                   variants[True])
            _add_pairs(comparison, pairs, resamples, bootstrap_seed, log)
            if len(pairs) == len(variants[False]) == len(variants[True]):
                for name, paired in comparison.seed_deltas.items():
                    comparison.delta[name] = round(paired.mean * 100, 1) + 0.0
            comparison.verdict = verdict(comparison, more_seeds_hint)
        if require_seed_interval:
            pairs = comparison.seed_deltas.get(REQUIRED_METRIC)
            try:
                t_interval(pairs.deltas if pairs else [])
            except InputError as error:
                raise InputError(
                    f'{detector} ({experiment}): {error}') from None
        comparisons.append(comparison)
    return comparisons


def _add_pairs(comparison: Comparison,
               pairs: Sequence[Tuple[Optional[int], WorkDir,
                                     WorkDir]], resamples: int,
               bootstrap_seed: int, log: Callable[[str], None]) -> None:
    if not pairs:
        return
    finals = [(seed, b.final_metrics(), y.final_metrics())
              for seed, b, y in pairs]
    for name, _ in TABLE_METRICS:
        if all(name in b and name in y for _, b, y in finals):
            comparison.seed_deltas[name] = seed_delta([
                (seed, b[name], y[name]) for seed, b, y in finals
            ])
    if resamples <= 0:
        return
    for index, (seed, baseline, yolor) in enumerate(pairs):
        label = seed_label(seed, index)
        log(f'[compare] {comparison.detector}, seed {label}: image bootstrap '
            f'({resamples} resamples)')
        metrics, note = image_interval(baseline, yolor, resamples,
                                       bootstrap_seed)
        if metrics:
            comparison.image_intervals[label] = metrics
        else:
            comparison.notes.append(f'seed {label}: {note}')


def compare(paths: Sequence[str], **options) -> List[Comparison]:
    """Read the work dirs ``paths`` and compare them (see
    :func:`compare_work_dirs`, which takes the ``options``).

    Raises:
        WorkDirError: If a work dir cannot be read or has no validation
            metrics.
    """
    return compare_work_dirs(load_work_dirs(paths), **options)


def _format_metric(summary: MetricSummary, bold: bool) -> str:
    text = f'{ap_points(summary.mean):.1f}'
    if summary.std is not None:
        text += f' ± {summary.std * 100:.1f}'
    text += '%'
    return f'**{text}**' if bold else text


def _row_cells(row: Row, model: str, other: Optional[Row]) -> List[str]:
    cells = [model, ':heavy_check_mark:' if row.yolor else '', str(row.seeds)]
    for name, _ in TABLE_METRICS:
        summary = row.metrics.get(name)
        if summary is None:
            cells.append('-')
            continue
        # The better printed mean of the pair is bold, both on a tie.
        rival = other.metrics.get(name) if other else None
        bold = rival is not None and (ap_points(summary.mean) >= ap_points(
            rival.mean))
        cells.append(_format_metric(summary, bold))
    return cells


def _markdown_row(cells: List[str]) -> str:
    return '| ' + ' | '.join(cells) + ' |'


def format_table(comparisons: Sequence[Comparison]) -> str:
    """A markdown table in the style of the YOLOR authors' MMDetection
    table: per comparison the baseline row, the YOLOR row and a delta row
    (``Δ``, in AP points); comparisons separated by an empty row.

    A detector compared in several experiments has the experiment in its
    Model cell.
    """
    num_columns = 3 + len(TABLE_METRICS)
    lines = [
        _markdown_row(['Model', 'YOLOR', 'seeds'] +
                      [header for _, header in TABLE_METRICS]),
        _markdown_row([':--'] + [':-:'] * (num_columns - 1)),
    ]
    experiments = Counter(c.detector for c in comparisons)
    for index, comparison in enumerate(comparisons):
        if index:
            lines.append(_markdown_row([''] * num_columns))
        model = f'**{comparison.detector}**'
        if experiments[comparison.detector] > 1:
            model += f' ({comparison.experiment})'
        if comparison.baseline:
            lines.append(
                _markdown_row(
                    _row_cells(comparison.baseline, model, comparison.yolor)))
        if comparison.yolor:
            lines.append(
                _markdown_row(
                    _row_cells(comparison.yolor, model, comparison.baseline)))
        if comparison.delta is not None:
            lines.append(
                _markdown_row(['Δ', '', ''] + [
                    '-' if value is None else f'{value:+.1f}'
                    for value in comparison.delta.values()
                ]))
        lines += _interval_rows(comparison)
    return '\n'.join(lines)


def _interval_rows(comparison: Comparison) -> List[str]:
    """The rows of a comparison's 95 % intervals of Δ: over seeds (with two
    or more pairs), and over images for each seed that kept predictions."""
    rows = []
    paired = next(iter(comparison.seed_deltas.values()), None)
    if paired is not None and paired.ci95 is not None:
        rows.append(
            _markdown_row([f'95 % CI, {paired.pairs} seeds', '', ''] + [
                _interval(comparison.seed_deltas[name].ci95) if name in
                comparison.seed_deltas else '-' for name, _ in TABLE_METRICS
            ]))
    for label, metrics in comparison.image_intervals.items():
        rows.append(
            _markdown_row([f'95 % CI, images, seed {label}', '', ''] + [
                _interval(metrics[name].ci95)
                if name in metrics and metrics[name].ci95 is not None else '-'
                for name, _ in TABLE_METRICS
            ]))
    return rows


def format_verdicts(comparisons: Sequence[Comparison]) -> str:
    """One line per comparison with both variants: its verdict, and the
    notes on intervals that could not be computed."""
    experiments = Counter(c.detector for c in comparisons)
    lines = []
    for comparison in comparisons:
        if comparison.verdict is None:
            continue
        name = f'**{comparison.detector}**'
        if experiments[comparison.detector] > 1:
            name += f' ({comparison.experiment})'
        lines.append(f'- {name}: {comparison.verdict}.')
        pairing = comparison.pairing and comparison.seed_deltas
        lines += [
            f'  - {note}'
            for note in ([comparison.pairing] if pairing else []) +
            comparison.notes
        ]
    return '\n'.join(lines)


def format_report(comparisons: Sequence[Comparison]) -> str:
    """The table (:func:`format_table`), then the verdicts
    (:func:`format_verdicts`) and what the intervals capture."""
    verdicts = format_verdicts(comparisons)
    if not verdicts:
        return format_table(comparisons)
    return '\n'.join([
        format_table(comparisons), '', verdicts, '',
        'The interval over seeds captures training noise; the interval over '
        'images, test-set sampling for one trained pair; neither, a '
        'different dataset.'
    ])


def dump_json(comparisons: Sequence[Comparison], path: str) -> None:
    """Write the comparisons to ``path`` as JSON: a list of
    :class:`Comparison` objects with their rows, metric summaries (as
    logged, 0-1) and deltas (AP points)."""
    with open(path, 'w', encoding='utf-8') as file:
        json.dump([asdict(c) for c in comparisons],
                  file,
                  indent=2,
                  ensure_ascii=False)
