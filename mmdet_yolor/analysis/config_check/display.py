# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The check of one user config (``tools/analysis/check_config.py``) as a
user reads it: what is being run, each phase as it starts, and then which
sites got implicits, what folds and which checks passed."""
import time
from typing import Callable, Dict, List, Sequence

from mmengine.config import Config

from ...toggle import YOLOR_PARTS
from .inputs import image_shapes
from .row import COVERED, OK, PARTIAL, ConfigCheck
from .settings import SweepSettings


def format_sites(sites: Sequence[str]) -> str:
    """Module paths, ``neck.fpn_convs.{0,1,2}`` for numbered siblings."""
    groups: Dict[str, List[str]] = {}
    for site in sites:
        head, _, tail = site.rpartition('.')
        key = head if tail.isdigit() else site
        groups.setdefault(key, []).append(tail if tail.isdigit() else '')
    return ', '.join(f'{key}.{{{",".join(tails)}}}' if tails[0] else key
                     for key, tails in groups.items())


def format_plan(cfg: Config, config: str, settings: SweepSettings,
                yolor: str) -> str:
    """The line saying what checking ``config`` runs."""
    shapes = ', '.join(f'{h}x{w}' for h, w in image_shapes(cfg, settings))
    return (f'checking {config} with --yolor {yolor}: the baseline and its '
            f'YOLOR form train {settings.steps_phrase()} on '
            f'{settings.batch_size} generated images ({shapes} px) and '
            f'predict, then the YOLOR model is folded')


def timed_progress() -> Callable[[str], None]:
    """A ``progress`` for :func:`~.row.check_config` that prints each line
    at once, after the seconds since this was called."""
    start = time.perf_counter()

    def progress(line: str) -> None:
        print(f'[{time.perf_counter() - start:5.0f}s] {line}', flush=True)

    return progress


def format_check(result: ConfigCheck) -> str:
    """What :func:`~.row.check_config` found, for a user: the changes made
    to run here, the sites that got implicits per head family (and those
    without, with why), the fold report, a line per check and the row's
    status."""
    row = result.row
    lines = []
    if row.adaptations:
        lines.append(f'adapted to run here: {", ".join(row.adaptations)}')
    if row.fa_sites or result.refined or row.uncovered:
        lines += _sites_lines(result)
    if result.fold_report is not None:
        lines.append(result.fold_report.format())
    if result.checks:
        lines.append('checks:')
        lines += [
            f'  {_mark(check.passed, check.required)}  {check.name}: '
            f'{check.detail}' for check in result.checks
        ]
    if row.notes:
        lines.append('notes:')
        lines += [f'  - {note}' for note in row.notes]
    lines.append(_verdict(result))
    return '\n'.join(lines)


def _sites_lines(result: ConfigCheck) -> List[str]:
    """Where the implicits are: feature alignment, and the refined layers
    of each head family (or why it has none)."""
    row = result.row
    part = YOLOR_PARTS[result.yolor]
    if row.fa_sites:
        alignment = format_sites(row.fa_sites)
    elif part.get('feature_alignment', True):
        alignment = 'none'
    else:
        alignment = f'off (--yolor {result.yolor})'
    if part.get('prediction_refinement', True):
        why = 'YOLORHead found no prediction layer in it'
    else:
        why = f'prediction refinement is off (--yolor {result.yolor})'
    families = [
        f'  {family}: {", ".join(layer[len(family) + 1:] for layer in layers)}'
        for family, layers in result.refined.items()
    ] + [f'  {family}: no implicits, {why}' for family in row.uncovered]
    return [
        f'feature alignment: {alignment}', 'prediction refinement:' +
        ('' if families else ' none')
    ] + families


def _mark(passed, required: bool) -> str:
    if passed is None:
        return '-   '
    if passed:
        return 'pass'
    return 'FAIL' if required else 'warn'


def _verdict(result: ConfigCheck) -> str:
    row = result.row
    if row.status == OK:
        reason = ('every check passed, with implicits on the features and '
                  'in every head family')
    elif row.status == PARTIAL:
        reason = f'every check passed; {row.reason}'
    else:
        reason = row.reason
    covered = 'covered' if row.status in COVERED else 'not covered'
    return f'{row.status} ({covered}, {row.seconds:.0f}s): {reason}'
