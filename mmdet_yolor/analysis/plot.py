# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Plots of baseline and YOLOR runs and of what the implicits learned.

- :func:`plot_curves`: training loss against iteration and box mAP against
  epoch, one colour per detector and variant, the mean and ± std band of
  several seeds.
- :func:`plot_implicits`: the values ``g(z)`` of every implicit layer of a
  trained YOLOR model and their drift from initialisation, with
  :func:`load_implicit_stats` and :func:`format_implicit_summary`.

Figures are drawn on matplotlib's Agg canvas without pyplot, so no global
state or display is involved.
"""
import inspect
import os.path as osp
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from torch import nn

from ..models import ImplicitSite, implicit_layers, implicit_sites
from ..models.foldable import ALIGNMENT, INPUT, OUTPUT
from ..models.layers.implicit import IMPLICIT_OPERATORS, BaseImplicit
from .work_dirs import WorkDir, metric_values

VARIANT_LINESTYLES = {'baseline': '-', 'YOLOR': '--'}
SEED_MARKERS = ('o', 's', '^', 'D', 'v', 'P', 'X')
# Opacity of the ± std bands of several seeds.
BAND_ALPHA = 0.2
# Short names of the roles of implicit layers, for labels.
ROLE_LABELS = {ALIGNMENT: 'align', INPUT: 'A', OUTPUT: 'M'}
# matplotlib 3.10 replaced boxplot's ``vert=False`` by ``orientation``.
_HORIZONTAL_BOXES = (
    dict(orientation='horizontal') if 'orientation' in inspect.signature(
        Axes.boxplot).parameters else dict(vert=False))


class ImplicitPlotError(ValueError):
    """A config or checkpoint lacks the implicit layers to plot."""


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout='constrained')
    FigureCanvasAgg(figure)
    return figure


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average over ``window`` values; the first values
    average what is available."""
    values = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(values, 0, 0.))
    counts = np.minimum(np.arange(1, len(values) + 1), window)
    ends = np.arange(1, len(values) + 1)
    return (sums[ends] - sums[ends - counts]) / counts


def curve_group(work_dir: WorkDir) -> Tuple[str, str, str]:
    """The curve a work dir belongs to: its detector, experiment and
    variant. The work dirs of one group are seeds of one training."""
    return work_dir.detector, work_dir.experiment, work_dir.variant


def _seed_indices(work_dirs: Sequence[WorkDir]) -> List[int]:
    """Index (from 1) of each work dir among the seeds of its group."""
    seen: Counter = Counter()
    indices = []
    for w in work_dirs:
        seen[curve_group(w)] += 1
        indices.append(seen[curve_group(w)])
    return indices


def _variant_labels(work_dirs: Sequence[WorkDir]) -> List[str]:
    """``'<detector> <variant>'`` of each work dir, with the experiment
    when a detector has several."""
    experiments = Counter(detector
                          for detector, _ in {(w.detector, w.experiment)
                                              for w in work_dirs})
    labels = []
    for w in work_dirs:
        label = f'{w.detector} {w.variant}'
        if experiments[w.detector] > 1:
            label += f' ({w.experiment})'
        labels.append(label)
    return labels


def curve_labels(work_dirs: Sequence[WorkDir]) -> List[str]:
    """Legend label of each work dir: ``'<detector> baseline'`` or
    ``'<detector> YOLOR'``, with the seed index (``#2``) when a variant has
    several seeds and the experiment when a detector has several."""
    seeds = Counter(map(curve_group, work_dirs))
    return [
        label + (f' #{index}' if seeds[curve_group(w)] > 1 else '')
        for w, label, index in zip(work_dirs, _variant_labels(work_dirs),
                                   _seed_indices(work_dirs))
    ]


def group_labels(work_dirs: Sequence[WorkDir]) -> List[str]:
    """Legend label of the group of each work dir: as
    :func:`curve_labels`, but a group of several seeds is one curve,
    ``'<detector> <variant> (mean ± std, <n> seeds)'``."""
    seeds = Counter(map(curve_group, work_dirs))
    return [
        label + (f' (mean ± std, {seeds[curve_group(w)]} seeds)'
                 if seeds[curve_group(w)] > 1 else '')
        for w, label in zip(work_dirs, _variant_labels(work_dirs))
    ]


def curve_colors(work_dirs: Sequence[WorkDir]) -> List[str]:
    """Colour of each work dir: one per group (detector, experiment and
    variant) in order of appearance, the same in every panel."""
    groups = list(dict.fromkeys(map(curve_group, work_dirs)))
    return [f'C{groups.index(curve_group(w)) % 10}' for w in work_dirs]


def mean_std(
    series: Sequence[Tuple[Sequence[float], Sequence[float]]]
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof=1, as the comparison
    table) of several ``(x, y)`` series at every x of any of them.

    Args:
        series (Sequence[tuple]): ``(xs, ys)`` of each series, e.g. the
            epochs and mAP of each seed.

    Returns:
        tuple[np.ndarray]: The sorted x values, the mean of the series that
        have each x and their standard deviation, NaN where fewer than two
        series have that x.
    """
    values: Dict[float, List[float]] = {}
    for xs, ys in series:
        for x, y in zip(xs, ys):
            values.setdefault(x, []).append(y)
    xs = np.array(sorted(values))
    means = np.array([np.mean(values[x]) for x in xs])
    stds = np.array([
        np.std(values[x], ddof=1) if len(values[x]) > 1 else np.nan for x in xs
    ])
    return xs, means, stds


def _loss_series(work_dir: WorkDir) -> Tuple[List[float], np.ndarray]:
    """Iterations and training loss of a work dir, a trailing moving
    average over about 2% of the iterations."""
    steps = [record['step'] for record in work_dir.train_records]
    losses = [record['loss'] for record in work_dir.train_records]
    return steps, smooth(losses, max(1, round(len(losses) / 50)))


def _map_series(work_dir: WorkDir) -> Tuple[List[float], List[float]]:
    """Epochs (steps) and box mAP (%) of the validations of a work dir."""
    points = [(record['step'], metric_values(record).get('bbox_mAP'))
              for record in work_dir.val_records]
    points = [(step, value * 100) for step, value in points
              if value is not None]
    return [step for step, _ in points], [value for _, value in points]


def _plot_band(axes: Axes, series: Sequence[Tuple[Sequence[float],
                                                  Sequence[float]]],
               **style) -> None:
    """Plot the mean of ``series`` and a ± std band in one colour."""
    series = [(xs, ys) for xs, ys in series if len(xs)]
    if not series:
        return
    xs, means, stds = mean_std(series)
    axes.plot(xs, means, **style)
    if len(series) > 1:
        axes.fill_between(
            xs,
            means - stds,
            means + stds,
            color=style['color'],
            alpha=BAND_ALPHA,
            linewidth=0)


def curves_figure(work_dirs: Sequence[WorkDir],
                  per_seed: bool = False) -> Tuple[Figure, List[str]]:
    """Draw training loss against iteration and box mAP against epoch of
    work dirs; see :func:`plot_curves`.

    Args:
        work_dirs (Sequence[WorkDir]): The work dirs to draw.
        per_seed (bool): Draw every seed's curve instead of the mean and
            standard deviation of the seeds. Defaults to False.

    Returns:
        tuple[Figure, list[str]]: The figure (two axes: loss, mAP) and the
        legend label each work dir is drawn under.
    """
    labels = curve_labels(work_dirs) if per_seed else group_labels(work_dirs)
    colors = curve_colors(work_dirs)
    figure = _new_figure(11, 4.6)
    loss_axes, map_axes = figure.subplots(1, 2)
    if per_seed:
        for work_dir, label, color, seed in zip(work_dirs, labels, colors,
                                                _seed_indices(work_dirs)):
            style = dict(
                color=color,
                linestyle=VARIANT_LINESTYLES[work_dir.variant],
                marker=SEED_MARKERS[(seed - 1) % len(SEED_MARKERS)],
                markersize=4,
                linewidth=1.2,
                label=label)
            steps, losses = _loss_series(work_dir)
            if steps:
                every = max(1, len(steps) // 8)
                loss_axes.plot(steps, losses, markevery=every, **style)
            epochs, maps = _map_series(work_dir)
            if epochs:
                map_axes.plot(epochs, maps, **style)
    else:
        groups: Dict[Tuple[str, str, str], List[int]] = {}
        for index, work_dir in enumerate(work_dirs):
            groups.setdefault(curve_group(work_dir), []).append(index)
        for indices in groups.values():
            members = [work_dirs[index] for index in indices]
            style = dict(
                color=colors[indices[0]],
                linestyle=VARIANT_LINESTYLES[members[0].variant],
                linewidth=1.2,
                label=labels[indices[0]])
            _plot_band(loss_axes, [_loss_series(w) for w in members], **style)
            _plot_band(
                map_axes, [_map_series(w) for w in members],
                marker='o',
                markersize=4,
                **style)
    loss_axes.set(title='training loss', xlabel='iteration', ylabel='loss')
    map_axes.set(
        title='validation box mAP', xlabel='epoch', ylabel='box mAP (%)')
    map_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles: Dict[str, Any] = {}
    for axes in (loss_axes, map_axes):
        axes.grid(alpha=0.3)
        if not axes.lines:
            axes.text(
                0.5, 0.5, 'no data', ha='center', transform=axes.transAxes)
        for handle, label in zip(*axes.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(
            handles.values(),
            handles.keys(),
            loc='outside lower center',
            ncols=min(len(handles), 4),
            fontsize=8)
    return figure, labels


def plot_curves(work_dirs: Sequence[WorkDir],
                out: str,
                per_seed: bool = False) -> List[str]:
    """Plot training loss against iteration and box mAP against epoch of
    each work dir into one figure saved at ``out``.

    Each group of work dirs (detector, experiment and variant) has its own
    colour in both panels and one legend entry; line styles tell baseline
    (solid) and YOLOR (dashed) apart too. The work dirs of a group are
    seeds: they are drawn as their mean with a ± std band (sample standard
    deviation), or each with its own marker when ``per_seed``. The loss is
    a trailing moving average over about 2% of the iterations.

    Args:
        work_dirs (Sequence[WorkDir]): Work dirs read by
            :func:`~mmdet_yolor.analysis.work_dirs.load_work_dirs`.
        out (str): Image file to write (format from its extension).
        per_seed (bool): Draw every seed's curve instead of the mean and
            standard deviation of the seeds. Defaults to False.

    Returns:
        list[str]: The legend label each work dir is drawn under.
    """
    figure, labels = curves_figure(work_dirs, per_seed)
    figure.savefig(out, dpi=150)
    return labels


@dataclass
class ImplicitStats:
    """The learned values of one implicit layer.

    Attributes:
        name (str): Module name in the model, e.g.
            ``'bbox_head.conv_cls.implicit_m.2'``.
        group (str): Where it sits: the module it belongs to (``'neck'``,
            ``'bbox_head.conv_cls'``).
        label (str): Short label: group, role (``align``, ``A`` input,
            ``M`` output) and level, e.g. ``'bbox_head.conv_cls M L2'``.
        operator (str): ``'add'``, ``'multiply'`` or ``'concat'``.
        channels (int): Number of values.
        offset (float): Neutral element of the operator (0 or 1).
        values (np.ndarray): ``g(z)``, shape ``(channels, )``.
        drift (float): Mean ``|g - g_init|`` when an initial checkpoint was
            given, else mean ``|g - offset|``.
    """
    name: str
    group: str
    label: str
    operator: str
    channels: int
    offset: float
    values: np.ndarray
    drift: float

    @property
    def mean(self) -> float:
        """Mean of ``g(z)``."""
        return float(self.values.mean())

    @property
    def std(self) -> float:
        """Standard deviation of ``g(z)`` over its channels."""
        return float(self.values.std())


def implicit_location(site: ImplicitSite) -> Tuple[str, str]:
    """Return ``(group, label)`` of an implicit layer: the module it acts
    on, and a short label with its role and pyramid level."""
    group = site.target or 'model'
    label = f'{group} {ROLE_LABELS[site.role]}'
    if site.index is not None:
        label += f' L{site.index}'
    return group, label


def implicit_operator(module: BaseImplicit) -> str:
    """The operator name (``'add'``, ...) of an implicit layer."""
    for operator, implicit_type in IMPLICIT_OPERATORS.items():
        if isinstance(module, implicit_type):
            return operator
    return type(module).__name__


@torch.no_grad()
def implicit_values(model: nn.Module) -> Dict[str, np.ndarray]:
    """``g(z)`` of every implicit layer of ``model`` by module name."""
    return {
        name: module.representation().detach().cpu().double().numpy()
        for name, module in implicit_layers(model).items()
    }


def implicit_stats(
    model: nn.Module,
    init_values: Optional[Dict[str,
                               np.ndarray]] = None) -> List[ImplicitStats]:
    """Describe every implicit layer of ``model``.

    Args:
        model (nn.Module): A model with implicit layers.
        init_values (dict[str, np.ndarray], optional): ``g(z)`` of each
            implicit at an earlier point (:func:`implicit_values`); the drift
            is measured from them. Defaults to the operator's neutral
            element, the centre of the initialisation.
    """
    values = implicit_values(model)
    stats = []
    for site in implicit_sites(model):
        name, module = site.name, site.implicit
        reference = (
            init_values[name] if init_values is not None else module.offset)
        group, label = implicit_location(site)
        stats.append(
            ImplicitStats(
                name=name,
                group=group,
                label=label,
                operator=implicit_operator(module),
                channels=module.channels,
                offset=module.offset,
                values=values[name],
                drift=float(np.abs(values[name] - reference).mean())))
    return stats


def _load_implicit_checkpoint(model: nn.Module, path: str) -> None:
    """Load ``path`` into ``model``; refuse a checkpoint lacking the
    implicits, which would silently keep their random initialisation."""
    checkpoint = load_checkpoint(model, path, map_location='cpu')
    state = checkpoint.get('state_dict', checkpoint)
    # load_checkpoint strips the 'module.' of (distributed) wrappers too.
    keys = {re.sub(r'^module\.', '', key) for key in state}
    missing = [
        f'{name}.{key}' for name, module in implicit_layers(model).items()
        for key in module.state_dict() if f'{name}.{key}' not in keys
    ]
    if missing:
        raise ImplicitPlotError(
            f'{path} has no values for {len(missing)} implicit parameters '
            f'(e.g. {missing[0]}): it is not a checkpoint of this YOLOR '
            f'config. Pass a checkpoint trained with it, not a baseline '
            f'one.')


def load_implicit_stats(
        config: str,
        checkpoint: str,
        init_checkpoint: Optional[str] = None) -> List[ImplicitStats]:
    """Build the model of a YOLOR ``config``, load ``checkpoint`` and
    describe its implicit layers.

    Args:
        config (str): The YOLOR config file that trained the checkpoint.
        checkpoint (str): The checkpoint to inspect.
        init_checkpoint (str, optional): An earlier checkpoint of the same
            training (e.g. ``epoch_1.pth``); the drift is then measured from
            its values instead of from the neutral element.

    Raises:
        ImplicitPlotError: If the model has no implicit layers or a
            checkpoint lacks their parameters.
    """
    register_all_modules()
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    if not implicit_layers(model):
        raise ImplicitPlotError(
            f'the model of {config} has no implicit layers; pass a YOLOR '
            f'config (e.g. configs/fcos/fcos-yolor_*.py).')
    init_values = None
    if init_checkpoint is not None:
        _load_implicit_checkpoint(model, init_checkpoint)
        init_values = implicit_values(model)
    _load_implicit_checkpoint(model, checkpoint)
    return implicit_stats(model, init_values)


def format_implicit_summary(stats: Sequence[ImplicitStats]) -> str:
    """A markdown table: per implicit its name, operator, channels, mean and
    standard deviation of ``g(z)`` and its drift."""
    lines = [
        '| implicit | operator | channels | mean | std | drift |',
        '| :-- | :-- | --: | --: | --: | --: |',
    ]
    for item in stats:
        lines.append(f'| {item.name} | {item.operator} | {item.channels} | '
                     f'{item.mean:.4f} | {item.std:.4f} | '
                     f'{item.drift:.4f} |')
    return '\n'.join(lines)


def plot_implicits(stats: Sequence[ImplicitStats],
                   out: str,
                   init_checkpoint: Optional[str] = None) -> None:
    """Plot the implicit layers of a model into ``out``: one row per
    implicit, grouped by where it sits.

    Left, the distribution of ``g(z)`` minus the operator's neutral element
    (so add and multiply implicits share one axis); right, the drift.

    Args:
        stats (Sequence[ImplicitStats]): From :func:`load_implicit_stats`.
        out (str): Image file to write (format from its extension).
        init_checkpoint (str, optional): The initial checkpoint the drift
            was measured from, named in the axis label; None when measured
            from the neutral element.
    """
    groups = list(dict.fromkeys(item.group for item in stats))
    colors = [f'C{groups.index(item.group) % 10}' for item in stats]
    # The first implicit at the top.
    rows = np.arange(len(stats))[::-1] + 1
    figure = _new_figure(10, max(3., 0.16 * len(stats) + 1.2))
    values_axes, drift_axes = figure.subplots(
        1, 2, sharey=True, gridspec_kw=dict(width_ratios=(3, 2)))
    boxes = values_axes.boxplot([item.values - item.offset for item in stats],
                                positions=rows,
                                widths=0.6,
                                patch_artist=True,
                                flierprops=dict(markersize=2),
                                medianprops=dict(color='black'),
                                **_HORIZONTAL_BOXES)
    for box, color in zip(boxes['boxes'], colors):
        box.set(facecolor=color, alpha=0.6)
    values_axes.axvline(0, color='grey', linewidth=0.8)
    values_axes.set(
        title='(a) implicit values',
        xlabel='g(z) − neutral element (0 for add/concat, 1 for multiply)')
    values_axes.set_yticks(rows, [item.label for item in stats])
    drift_axes.barh(rows, [item.drift for item in stats], color=colors)
    drift_axes.set(
        title='(b) drift from initialisation',
        xlabel=(f'mean |g − g_init| since {osp.basename(init_checkpoint)}'
                if init_checkpoint else 'mean |g − neutral element|'))
    for axes in (values_axes, drift_axes):
        axes.tick_params(labelsize=6)
        axes.xaxis.label.set_size(7)
        axes.title.set_size(8)
        axes.grid(axis='x', alpha=0.3)
    figure.savefig(out, dpi=150)
