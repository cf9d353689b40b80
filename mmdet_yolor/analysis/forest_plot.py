# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""A forest plot of YOLOR's differences and their intervals.

One line per detector and metric: each seed's difference (a dot) with its
95 % interval over images (a thin bar), their mean (a diamond) and the
Student-t 95 % interval over seeds (a thick bar, with two or more seeds),
against the line of no difference. Drawn on matplotlib's Agg
canvas without pyplot.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .compare import TABLE_METRICS, Comparison
from .seed_statistics import seed_label

# Plain-text names of the table metrics, for axis labels.
METRIC_LABELS = {
    'bbox_mAP': 'box AP',
    'bbox_mAP_50': 'box AP50',
    'bbox_mAP_75': 'box AP75',
    'segm_mAP': 'mask AP',
    'segm_mAP_50': 'mask AP50',
    'segm_mAP_75': 'mask AP75',
}
SEED_COLOR = '#1f77b4'
IMAGE_COLOR = '#ff7f0e'
# Vertical room of one line, and the spread of a line's image intervals.
LINE_INCHES = 0.42
IMAGE_SPREAD = 0.32


def forest_lines(
    comparisons: Sequence[Comparison],
    metrics: Optional[Sequence[str]] = None
) -> List[Tuple[str, Comparison, str]]:
    """``(label, comparison, metric)`` of each line, top to bottom: the
    comparisons with paired seeds, each with the ``metrics`` (default:
    every table metric it pairs) in table order."""
    lines = []
    for comparison in comparisons:
        for name, _ in TABLE_METRICS:
            if name not in comparison.seed_deltas or (metrics is not None
                                                      and name not in metrics):
                continue
            lines.append((f'{comparison.detector}\n{METRIC_LABELS[name]}',
                          comparison, name))
    return lines


def forest_figure(comparisons: Sequence[Comparison],
                  metrics: Optional[Sequence[str]] = None) -> Figure:
    """Draw the forest plot of ``comparisons`` (see the module docstring).

    Raises:
        ValueError: If no comparison has paired seeds.
    """
    lines = forest_lines(comparisons, metrics)
    if not lines:
        raise ValueError('no comparison has paired baseline and YOLOR runs '
                         'to plot')
    figure = Figure(
        figsize=(8.5, 1.3 + LINE_INCHES * len(lines)), layout='constrained')
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    axes.axvline(0, color='0.4', linewidth=1)
    labelled = set()

    def label(name: str) -> Optional[str]:
        if name in labelled:
            return None
        labelled.add(name)
        return name

    for row, (_, comparison, name) in enumerate(lines):
        y = -row
        paired = comparison.seed_deltas[name]
        if paired.ci95 is not None:
            low, high = (value * 100 for value in paired.ci95)
            axes.plot([low, high], [y, y],
                      color=SEED_COLOR,
                      linewidth=5,
                      alpha=0.5,
                      solid_capstyle='butt',
                      label=label('95 % CI over seeds (Student t)'))
        # each seed on a line of its own, its interval over images with it
        half = IMAGE_SPREAD / 2 if paired.pairs > 1 else 0.0
        offsets = np.linspace(-half, half, paired.pairs)
        for index, seed in enumerate(paired.seeds):
            delta, offset = paired.deltas[index], offsets[index]
            pair = seed_label(seed, index)
            interval = comparison.image_intervals.get(pair, {}).get(name)
            if interval is not None and interval.ci95 is not None:
                low, high = (value * 100 for value in interval.ci95)
                axes.plot([low, high], [y + offset] * 2,
                          color=IMAGE_COLOR,
                          linewidth=1.2,
                          label=label('95 % CI over images, per seed'))
            axes.plot([delta * 100], [y + offset],
                      'o',
                      color='0.2',
                      markersize=3.5,
                      label=label('Δ of each seed'))
            axes.annotate(
                f'seed {pair}', (delta * 100, y + offset),
                xytext=(4, 2),
                textcoords='offset points',
                fontsize=6,
                color='0.3')
        axes.plot([paired.mean * 100], [y],
                  'D',
                  color=SEED_COLOR,
                  markersize=7,
                  label=label('mean Δ over seeds'))
    axes.set_yticks([-row for row in range(len(lines))],
                    [text for text, _, _ in lines],
                    fontsize=8)
    axes.set_ylim(-len(lines) + 0.5, 0.5)
    axes.set_xlabel('YOLOR − baseline (AP points)')
    axes.grid(axis='x', alpha=0.3)
    axes.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1))
    figure.suptitle(
        'YOLOR − baseline: an interval that excludes 0 is a difference '
        'beyond that noise',
        fontsize=9)
    return figure


def plot_forest(comparisons: Sequence[Comparison],
                out: str,
                metrics: Optional[Sequence[str]] = None) -> None:
    """Draw the forest plot of ``comparisons`` into the image file
    ``out`` (format from its extension); ``metrics`` as
    :func:`forest_lines`."""
    forest_figure(comparisons, metrics).savefig(out, dpi=120)
