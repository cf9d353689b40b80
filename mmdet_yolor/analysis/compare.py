# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Compare baseline and YOLOR training runs in a table like the YOLOR
authors' MMDetection table.

Each work dir contributes its final validation metrics. Work dirs of the same
detector, experiment and variant are seeds of one row, reported as mean ±
sample standard deviation. An experiment is the config name without the
YOLOR marker (:func:`~mmdet_yolor.analysis.work_dirs.experiment_name`), so
``faster-rcnn_r50_fpn_1x_coco.py``, ``faster-rcnn-yolor_r50_fpn_1x_coco.py``
and ``tools/train.py faster-rcnn_r50_fpn_1x_coco.py --yolor`` runs compare
with each other.
"""
import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

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
# Every row needs at least this metric.
REQUIRED_METRIC = 'bbox_mAP'


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
        delta (dict[str, float | None], optional): Per table metric, the
            YOLOR mean minus the baseline mean in AP points, both as printed
            (so the table reads consistently); None for a metric one side
            lacks. None unless both rows exist.
    """
    detector: str
    experiment: str
    baseline: Optional[Row] = None
    yolor: Optional[Row] = None
    delta: Optional[Dict[str, Optional[float]]] = field(default=None)


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


def compare_work_dirs(work_dirs: Sequence[WorkDir]) -> List[Comparison]:
    """Group work dirs into comparisons by (detector, experiment), in order
    of first appearance, and summarise their rows."""
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
        comparisons.append(comparison)
    return comparisons


def compare(paths: Sequence[str]) -> List[Comparison]:
    """Read the work dirs ``paths`` and compare them (see
    :func:`compare_work_dirs`).

    Raises:
        WorkDirError: If a work dir cannot be read or has no validation
            metrics.
    """
    return compare_work_dirs(load_work_dirs(paths))


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
    return '\n'.join(lines)


def dump_json(comparisons: Sequence[Comparison], path: str) -> None:
    """Write the comparisons to ``path`` as JSON: a list of
    :class:`Comparison` objects with their rows, metric summaries (as
    logged, 0-1) and deltas (AP points)."""
    with open(path, 'w', encoding='utf-8') as file:
        json.dump([asdict(c) for c in comparisons],
                  file,
                  indent=2,
                  ensure_ascii=False)
