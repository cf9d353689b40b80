# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The sweep's report: totals by status and folder, a plain-text table, and
``docs/model_zoo.md``, with the compile column where compile rows are
given."""
import datetime
import os
import os.path as osp
import platform
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import mmcv
import mmdet
import torch

from mmdet_yolor.analysis.config_check.display import format_sites
from mmdet_yolor.analysis.config_check.row import (COVERED, NOT_RUNNABLE,
                                                   STATUSES, SweepRow)
from mmdet_yolor.analysis.config_check.settings import SweepSettings

from .compile_row import (BASELINE_DOES_NOT_COMPILE, COMPILES_LIKE_BASELINE,
                          VARIANTS, CompileRow)
from .configs import NOT_ALGORITHM_FOLDERS, mmdet_config_dir

# Compile rows by (folder, config).
CompileRows = Mapping[Tuple[str, str], CompileRow]


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


def compile_cell(row: Optional[CompileRow]) -> str:
    """``ok: 4/1/0`` (frames/graph breaks/recompiles, the same for the
    baseline, YOLOR and folded), the three triples where they differ, and
    the reason of a row that is not ``ok``."""
    if row is None:
        return 'not measured'
    triples = [row.counts_of(variant) for variant in VARIANTS]
    shown = [
        '/'.join(map(str, triple)) for triple in triples if triple is not None
    ]
    if len(set(shown)) == 1:
        shown = shown[:1]
    cell = row.status
    if shown:
        cell += ': ' + ', '.join(shown)
    if row.mode != 'tensor' and shown:
        cell += f' ({row.mode})'
    if row.reason:
        cell += f' ({row.reason})' if shown else f': {row.reason}'
    return cell


def _row_cells(row: SweepRow,
               markdown: bool,
               compiled: Optional[CompileRows] = None) -> List[str]:
    if row.pr_sites:
        separator = '<br>' if markdown else ', '
        pr = separator.join(f'{family} ({count})'
                            for family, count in row.pr_sites.items())
    else:
        pr = '-'
    folded = f'{row.folded[0]}/{row.folded[1]}' if row.folded else '-'
    if row.agreement is not None and row.agreement < 1:
        folded += f' ({row.agreement:.0%} kept)'
    cells = [
        row.folder, row.config,
        format_sites(row.fa_sites) or '-', pr,
        _status_cell(row), folded
    ]
    if compiled is not None:
        cells.append('-' if row.status == NOT_RUNNABLE else compile_cell(
            compiled.get((row.folder, row.config))))
    return cells + [f'{row.seconds:.0f}s']


HEADER = ['folder', 'config', 'FA site', 'PR sites', 'status', 'fold', 'time']
COMPILE_HEADER = HEADER[:-1] + ['compile'] + HEADER[-1:]


def compile_totals(rows: Sequence[SweepRow],
                   compiled: CompileRows) -> List[str]:
    """The compile column's totals, over the runnable folders: measured,
    compiling like their baselines (every config ``ok``), and those whose
    baseline does not compile."""
    by_folder: Dict[str, List[Optional[CompileRow]]] = {}
    for row in rows:
        if row.status != NOT_RUNNABLE:
            by_folder.setdefault(row.folder, []).append(
                compiled.get((row.folder, row.config)))
    measured = {
        folder: items
        for folder, items in by_folder.items() if all(items)
    }

    def folders_where(status: str) -> int:
        return sum(
            all(item.status == status for item in items)
            for items in measured.values())

    like = folders_where(COMPILES_LIKE_BASELINE)
    no_baseline = sum(
        any(item.status == BASELINE_DOES_NOT_COMPILE for item in items)
        for items in measured.values())
    statuses = Counter(item.status for items in measured.values()
                       for item in items)
    counts = ', '.join(f'{status} {count}'
                       for status, count in sorted(statuses.items()))
    return [
        f'compile: {len(measured)}/{len(by_folder)} runnable folders '
        f'measured; {like} compile like their baselines, {no_baseline} '
        f'have a baseline that does not compile ({counts})'
    ]


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


def format_table(rows: Sequence[SweepRow],
                 width: int = 60,
                 compiled: Optional[CompileRows] = None) -> str:
    """A plain-text table of ``rows`` (with the compile column where
    ``compiled`` is given) and the totals, cells cut to ``width``
    characters."""
    header = HEADER if compiled is None else COMPILE_HEADER
    table = [header] + [[
        cell if len(cell) <= width else cell[:width - 3] + '...'
        for cell in _row_cells(row, markdown=False, compiled=compiled)
    ] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        '  '.join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
        for line in table
    ]
    lines.insert(1, '  '.join('-' * w for w in widths))
    totals = format_totals(summarize(rows))
    if compiled is not None:
        totals += compile_totals(rows, compiled)
    return '\n'.join(lines + [''] + totals)


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


def other_stacks(rows: Sequence[SweepRow],
                 compiled: Optional[CompileRows] = None) -> str:
    """A sentence naming the configs whose rows ran on another torch than
    this one (the sweep stack's, ``make sweep-stack``); '' if none."""
    elsewhere = {}
    for row in list(rows) + list((compiled or {}).values()):
        if row.torch and row.torch != torch.__version__:
            elsewhere.setdefault(row.torch, set()).add(row.folder)
    return ''.join(f' On torch {version} (`make sweep-stack`): '
                   f'{", ".join(sorted(folders))}.'
                   for version, folders in sorted(elsewhere.items()))


def format_markdown(rows: Sequence[SweepRow],
                    settings: SweepSettings,
                    command: str,
                    seconds: float,
                    compiled: Optional[CompileRows] = None,
                    compile_seconds: float = 0.0) -> str:
    """``docs/model_zoo.md``: how the sweep was made, its totals, the
    table, and why the rows that cannot run here cannot.

    Args:
        rows (Sequence[SweepRow]): The sweep's rows.
        settings (SweepSettings): Its settings.
        command (str): The command that made it.
        seconds (float): Its run time.
        compiled (Mapping, optional): The compile rows by ``(folder,
            config)``, for the compile column; None for none.
        compile_seconds (float): The compile column's run time.
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
        f'{machine_description()}; run time {format_duration(seconds)}' +
        (f', compile column {format_duration(compile_seconds)}'
         if compiled is not None else '') + '.' + other_stacks(rows, compiled),
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
    ]
    if compiled is not None:
        lines += [
            '**compile**: the baseline, the YOLOR form and the folded YOLOR '
            'form compiled with `torch.compile(backend=\'eager\')` (the '
            'frames and graph breaks inductor would see, without its compile '
            'time) and called twice on the same images in eval mode, '
            '`mode=\'tensor\'` (`predict` where a detector has no tensor '
            'mode). Counts are frames/graph breaks/recompiles, one triple '
            'where all three agree, else baseline, YOLOR, folded. The YOLOR '
            'forms hold the baseline\'s weights with identity implicits, so '
            'that all three take the same data-dependent branches. **ok**: '
            'neither YOLOR form needs more frames, graph breaks or '
            'recompiles than the baseline, and their compiled outputs equal '
            'eager ones (within 1e-4); **worse**: one does, or fails to '
            'compile; **baseline does not compile**: dynamo fails on mmdet\'s '
            'own model.',
            '',
        ]
    lines += [
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
        ' (pretrained weights and teacher checkpoints cannot be '
        'downloaded: a teacher is built and saved here; synchronised BN and '
        'AMP need distributed CUDA training; a fixed-size batch pad follows '
        'the generated image size; an untrained sigmoid classifier keeps '
        'every proposal a candidate of every class, and V3Det has 13204).',
        '',
        '## Totals',
        '',
    ]
    lines += [f'- {line}' for line in format_totals(totals)]
    if compiled is not None:
        lines += [f'- {line}' for line in compile_totals(rows, compiled)]
    header = HEADER if compiled is None else COMPILE_HEADER
    alignment = [
        '--:' if column in ('fold', 'time') else ':--' for column in header
    ]
    lines += [
        '',
        '## Configs',
        '',
        '| ' + ' | '.join(header) + ' |',
        '| ' + ' | '.join(alignment) + ' |',
    ]
    for row in rows:
        lines.append('| ' + ' | '.join(
            _escape(cell)
            for cell in _row_cells(row, markdown=True, compiled=compiled)) +
                     ' |')
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
