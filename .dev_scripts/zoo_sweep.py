# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Sweep the installed mmdet's configs (one per algorithm folder, or all):
train each baseline and its YOLOR form a few steps on generated inputs,
check the implicits, fold them; compile the baseline, the YOLOR form and
the folded form and count frames, graph breaks and recompiles; print and
write the table (docs/model_zoo.md). Each config's check and its compile
measurement run in processes of their own."""
import argparse
import os
import os.path as osp
import sys
import time

from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from mmdet_yolor.analysis.config_check import SweepSettings
from mmdet_yolor.analysis.config_check.row import NOT_RUNNABLE
from mmdet_yolor.analysis.config_check.settings import add_settings_arguments
from yolor_dev.zoo_sweep import (CHECK, COMPILE, format_markdown, format_table,
                                 list_configs, load_rows, run_sweep)
from yolor_dev.zoo_sweep.report import format_duration


def parse_args():
    defaults = SweepSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        '--all',
        action='store_true',
        help='every config of each folder, not one per folder')
    parser.add_argument(
        '--folders',
        nargs='+',
        metavar='FOLDER',
        help='algorithm folders of mmdet/.mim/configs to sweep '
        '(default: all)')
    add_settings_arguments(parser)
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument(
        '--timeout',
        type=float,
        default=defaults.timeout,
        help='seconds before a config\'s process is killed '
        '(default: %(default)s)')
    parser.add_argument(
        '--rows',
        default='work_dirs/zoo_sweep/rows.jsonl',
        help='JSON-lines file each finished row is appended to '
        '(default: %(default)s)')
    parser.add_argument(
        '--compile-rows',
        default='work_dirs/zoo_sweep/compile.jsonl',
        help='JSON-lines file each finished compile row is appended to '
        '(default: %(default)s)')
    parser.add_argument(
        '--compile-only',
        action='store_true',
        help='measure the compile column alone; the checks are taken from '
        '--rows (which must hold every config swept)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='rows run at once, sharing the torch threads '
        '(default: %(default)s)')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='take the configs already in --rows (and --compile-rows) from '
        'there and run the rest (delete a line to run its config again)')
    parser.add_argument(
        '--out',
        default='docs/model_zoo.md',
        help='markdown file to write; "" to write none '
        '(default: %(default)s)')
    return parser.parse_args()


def timed_sweep(specs, settings, args, rows_file, kind):
    """The rows of ``kind`` for ``specs`` and their run time: resumed, the
    rows' own times, as if run in one go."""
    start = time.perf_counter()
    rows = run_sweep(
        specs,
        settings,
        rows_file=rows_file,
        resume=args.resume,
        kind=kind,
        jobs=args.jobs)
    seconds = sum(row.seconds for row in rows) if args.resume else \
        time.perf_counter() - start
    return rows, seconds


def main():
    args = parse_args()
    register_all_modules()
    settings = SweepSettings(
        image_size=args.image_size,
        batch_size=args.batch_size,
        steps=args.steps,
        timeout=args.timeout)
    with runs.exit_on_input_error():
        specs = list_configs(args.folders, args.all)
    os.makedirs(osp.dirname(osp.abspath(args.rows)), exist_ok=True)
    os.makedirs(osp.dirname(osp.abspath(args.compile_rows)), exist_ok=True)
    if args.compile_only:
        checked = load_rows(args.rows, CHECK)
        missing = [
            f'{spec.folder}/{spec.name}' for spec in specs
            if (spec.folder, spec.name) not in checked
        ]
        if missing:
            sys.exit(f'--compile-only takes the checks from {args.rows}, '
                     f'which has no row of {", ".join(missing[:5])}'
                     f'{" ..." if len(missing) > 5 else ""}: run the sweep '
                     'without --compile-only for them first')
        rows = [checked[spec.folder, spec.name] for spec in specs]
        check_seconds = sum(row.seconds for row in rows)
    else:
        rows, check_seconds = timed_sweep(specs, settings, args, args.rows,
                                          CHECK)
    # a config whose baseline cannot run here is not compiled
    runnable = [
        spec for spec, row in zip(specs, rows) if row.status != NOT_RUNNABLE
    ]
    compiled, compile_seconds = timed_sweep(runnable, settings, args,
                                            args.compile_rows, COMPILE)
    compiled = {(row.folder, row.config): row for row in compiled}
    print(format_table(rows, compiled=compiled))
    if args.out:
        command = ' '.join(['python .dev_scripts/zoo_sweep.py'] + sys.argv[1:])
        with open(args.out, 'w') as f:
            f.write(
                format_markdown(rows, settings, command, check_seconds,
                                compiled, compile_seconds))
        print(f'wrote {args.out} (checks {format_duration(check_seconds)}, '
              f'compile {format_duration(compile_seconds)})')


if __name__ == '__main__':
    main()
