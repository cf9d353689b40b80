# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Sweep the installed mmdet's configs (one per algorithm folder, or all):
train each baseline and its YOLOR form a few steps on generated inputs,
check the implicits, fold them, and print and write the table
(docs/model_zoo.md). Each config runs in its own process."""
import argparse
import os
import os.path as osp
import sys
import time

from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from mmdet_yolor.analysis.config_check import SweepSettings
from mmdet_yolor.analysis.config_check.settings import add_settings_arguments
from yolor_dev.zoo_sweep import (format_markdown, format_table, list_configs,
                                 run_sweep)


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
        '--resume',
        action='store_true',
        help='take the configs already in --rows from there and run the '
        'rest (delete a line to run its config again)')
    parser.add_argument(
        '--out',
        default='docs/model_zoo.md',
        help='markdown file to write; "" to write none '
        '(default: %(default)s)')
    return parser.parse_args()


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
    start = time.perf_counter()
    rows = run_sweep(specs, settings, rows_file=args.rows, resume=args.resume)
    # resumed: the rows' own times, as if run in one go
    seconds = sum(row.seconds for row in rows) if args.resume else \
        time.perf_counter() - start
    print(format_table(rows))
    if args.out:
        command = ' '.join(['python .dev_scripts/zoo_sweep.py'] + sys.argv[1:])
        with open(args.out, 'w') as f:
            f.write(format_markdown(rows, settings, command, seconds))
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
