# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The sweep's report: totals by status and folder, a plain-text table, and
``docs/model_zoo.md``."""
import datetime
import os
import os.path as osp
import platform
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Sequence

import mmcv
import mmdet
import torch

from mmdet_yolor.analysis.config_check.display import format_sites
from mmdet_yolor.analysis.config_check.row import (COVERED, NOT_RUNNABLE,
                                                   STATUSES, SweepRow)
from mmdet_yolor.analysis.config_check.settings import SweepSettings

from .configs import NOT_ALGORITHM_FOLDERS, mmdet_config_dir


def format_duration(seconds: float) -> str:
    """``42s``, ``7m`` or ``2h11m``."""
    minutes = int(round(seconds / 60))
    if seconds < 60:
        return f'{seconds:.0f}s'
    return f'{minutes // 60}h{minutes % 60:02d}m' if minutes >= 60 \
        else f'{minutes}m'


@dataclass
class SweepTotals:
    """Counts of a sweep.

    Attributes:
        statuses (dict[str, int]): Rows per status.
        rows (int): All rows.
        runnable (int): Rows whose baseline can run here (not ``n/a``).
        covered (int): ``ok`` and ``partial`` rows.
        folders (int): Folders swept.
        runnable_folders (int): Folders with a runnable row.
        covered_folders (int): Runnable folders whose runnable rows are all
            covered.
    """
    statuses: Dict[str, int]
    rows: int
    runnable: int
    covered: int
    folders: int
    runnable_folders: int
    covered_folders: int


def summarize(rows: Sequence[SweepRow]) -> SweepTotals:
    """Count ``rows`` by status and by folder."""
    statuses = Counter(row.status for row in rows)
    by_folder: Dict[str, List[SweepRow]] = {}
    for row in rows:
        by_folder.setdefault(row.folder, []).append(row)
    runnable = {
        folder: [row for row in items if row.status != NOT_RUNNABLE]
        for folder, items in by_folder.items()
    }
    return SweepTotals(
        statuses={
            status: statuses[status]
            for status in STATUSES if statuses[status]
        },
        rows=len(rows),
        runnable=sum(row.status != NOT_RUNNABLE for row in rows),
        covered=sum(row.status in COVERED for row in rows),
        folders=len(by_folder),
        runnable_folders=sum(bool(items) for items in runnable.values()),
        covered_folders=sum(
            bool(items) and all(row.status in COVERED for row in items)
            for items in runnable.values()))


def _status_cell(row: SweepRow) -> str:
    reason = row.reason.replace(f'{mmdet_config_dir()}/', 'mmdet::')
    return f'{row.status}: {reason}' if reason else row.status


def _row_cells(row: SweepRow, markdown: bool) -> List[str]:
    if row.pr_sites:
        separator = '<br>' if markdown else ', '
        pr = separator.join(f'{family} ({count})'
                            for family, count in row.pr_sites.items())
    else:
        pr = '-'
    folded = f'{row.folded[0]}/{row.folded[1]}' if row.folded else '-'
    if row.agreement is not None and row.agreement < 1:
        folded += f' ({row.agreement:.0%} kept)'
    return [
        row.folder, row.config,
        format_sites(row.fa_sites) or '-', pr,
        _status_cell(row), folded, f'{row.seconds:.0f}s'
    ]


HEADER = ['folder', 'config', 'FA site', 'PR sites', 'status', 'fold', 'time']


def format_totals(totals: SweepTotals) -> List[str]:
    """The totals as lines."""
    share = totals.covered_folders / max(totals.runnable_folders, 1)
    counts = ', '.join(f'{status} {count}'
                       for status, count in totals.statuses.items())
    return [
        f'covered folders: {totals.covered_folders}/'
        f'{totals.runnable_folders} runnable ({share:.0%}); '
        f'{totals.folders - totals.runnable_folders} folders not runnable '
        f'here',
        f'configs: {totals.rows} ({counts}); covered {totals.covered}/'
        f'{totals.runnable} runnable',
    ]


def format_table(rows: Sequence[SweepRow], width: int = 60) -> str:
    """A plain-text table of ``rows`` with the totals, cells cut to
    ``width`` characters."""
    table = [HEADER] + [[
        cell if len(cell) <= width else cell[:width - 3] + '...'
        for cell in _row_cells(row, markdown=False)
    ] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = [
        '  '.join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
        for line in table
    ]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines + [''] + format_totals(summarize(rows)))


def machine_description() -> str:
    """The CPU, its cores and the OpenMMLab stack."""
    cpu = platform.processor() or platform.machine()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            names = [
                line.split(':', 1)[1].strip() for line in f
                if line.startswith('model name')
            ]
        cpu = names[0] if names else cpu
    gpu = 'a CUDA GPU' if torch.cuda.is_available() else 'no GPU'
    return (f'{os.cpu_count()}-core CPU ({cpu}), {gpu}; torch '
            f'{torch.__version__}, mmcv {mmcv.__version__}, mmdet '
            f'{mmdet.__version__}')


def _escape(text: str) -> str:
    return text.replace('|', '\\|')


def format_markdown(rows: Sequence[SweepRow], settings: SweepSettings,
                    command: str, seconds: float) -> str:
    """``docs/model_zoo.md``: how the sweep was made, its totals, the
    table, and why the rows that cannot run here cannot.

    Args:
        rows (Sequence[SweepRow]): The sweep's rows.
        settings (SweepSettings): Its settings.
        command (str): The command that made it.
        seconds (float): Its run time.
    """
    totals = summarize(rows)
    shapes = ', '.join(f'{h}x{w}' for h, w in settings.image_shapes())
    adaptations = sorted({item for row in rows for item in row.adaptations})
    lines = [
        '# YOLOR across the mmdet model zoo',
        '',
        '<!-- Generated by .dev_scripts/zoo_sweep.py: do not edit. -->',
        '',
        f'Made by `{command}` on {datetime.date.today().isoformat()}, '
        f'{machine_description()}; run time {format_duration(seconds)}.',
        '',
        'Each config of the installed mmdet (one per algorithm folder: the '
        'first model of its `metafile.yml`, or a lighter sibling with the '
        'same heads) runs twice on generated inputs: '
        f'{settings.batch_size} images ({shapes} px) with '
        f'{settings.objects} or fewer objects, their boxes, instance masks '
        'and, where the model reads them, semantic maps and proposals. The '
        f'**baseline** trains {settings.steps} steps (the config\'s '
        'optimizer, warm-up and loss; the epoch and iteration set as '
        'mmengine\'s `RuntimeInfoHook` sets them) and predicts. Its '
        '**YOLOR form**, `yolorize(cfg, **YOLOR_PARTS[\'all\'])`, trains the '
        'same steps on the same inputs: every loss finite, every implicit '
        'layer called and reached by a non-zero gradient; it predicts, and '
        '`fuse_implicit` folds it, after which its predictions must agree '
        'with the unfolded ones (95% of detections matched as sets).',
        '',
        'Columns: **FA site**, the modules holding feature-alignment '
        'implicits; **PR sites**, per head family (a `*_head` module, per '
        'stage in cascades) the prediction layers refined by implicits; '
        '**fold**, implicit layers folded by `fuse_implicit` / all of them; '
        '**time**, both variants of the row.',
        '',
        'Statuses: **ok** (every check passed, feature alignment and every '
        'head family with prediction layers has implicits); **partial** '
        '(every check passed, but some head family or the features have no '
        'implicits: listed); **refused** (the plugin raised its one-line '
        '`InputError`); **crash** (anything else raised on the YOLOR path); '
        '**fail** (the YOLOR model ran but a check failed); **n/a** (the '
        'baseline cannot run on this machine: reason given); **baseline '
        'error** (the baseline failed for another reason); **timeout** / '
        '**killed** (the row\'s process exceeded '
        f'{settings.timeout:.0f} s / died). **Covered** means ok or '
        'partial; a folder is covered when all its runnable configs are.',
        '',
        'Adapted to run here: ' +
        (', '.join(adaptations) if adaptations else 'nothing') +
        ' (pretrained weights cannot be downloaded; synchronised BN and AMP '
        'need distributed CUDA training; a fixed-size batch pad follows the '
        'generated image size).',
        '',
        '## Totals',
        '',
    ]
    lines += [f'- {line}' for line in format_totals(totals)]
    lines += [
        '',
        '## Configs',
        '',
        '| ' + ' | '.join(HEADER) + ' |',
        '| :-- | :-- | :-- | :-- | :-- | --: | --: |',
    ]
    for row in rows:
        lines.append('| ' + ' | '.join(
            _escape(cell) for cell in _row_cells(row, markdown=True)) + ' |')
    not_runnable: Dict[str, List[str]] = {}
    for row in rows:
        if row.status == NOT_RUNNABLE:
            not_runnable.setdefault(row.reason,
                                    []).append(f'{row.folder}/{row.config}')
    lines += ['', '## Not runnable here', '']
    if not_runnable:
        for reason, configs in sorted(not_runnable.items()):
            lines.append(f'- {reason}: {", ".join(configs)}')
    else:
        lines.append('Every baseline ran.')
    noted = [row for row in rows if row.notes]
    lines += ['', '## Notes', '']
    lines += [
        f'- {row.folder}/{row.config}: ' + '; '.join(map(_escape, row.notes))
        for row in noted
    ] or ['None.']
    lines += ['', '## Not swept', '']
    lines += [
        f'- `{folder}`: {why}'
        for folder, why in sorted(NOT_ALGORITHM_FOLDERS.items())
    ]
    return '\n'.join(lines) + '\n'
