# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Plot baseline and YOLOR runs.

curves:   training loss and validation box mAP of work dirs, one colour per
          detector and variant; the seeds of a variant as their mean and
          ± std band, or each on its own with --per-seed.
implicit: the implicit values of a trained YOLOR model and their drift from
          initialisation; also prints a summary table.
forest:   YOLOR's differences from the baseline in work dirs (as
          tools/analysis/compare.py pairs them), one line per detector and
          metric: each seed's, their mean, the 95 % interval over seeds and
          each seed's 95 % interval over images.
"""
import argparse
import sys

from mmdet_yolor.analysis.compare import TABLE_METRICS, compare
from mmdet_yolor.analysis.forest_plot import plot_forest
from mmdet_yolor.analysis.image_bootstrap import DEFAULT_RESAMPLES
from mmdet_yolor.analysis.plot import (ImplicitPlotError,
                                       format_implicit_summary,
                                       load_implicit_stats, plot_curves,
                                       plot_implicits)
from mmdet_yolor.analysis.work_dirs import WorkDirError, load_work_dirs


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)

    curves = commands.add_parser(
        'curves', help='loss and box mAP curves of work dirs')
    curves.add_argument('work_dirs', nargs='+', help='training work dirs')
    curves.add_argument(
        '--out', default='curves.png', help='image file to write')
    curves.add_argument(
        '--per-seed',
        action='store_true',
        help='draw every seed\'s curves instead of the mean and standard '
        'deviation of the seeds of each variant')

    implicit = commands.add_parser(
        'implicit', help='implicit values of a YOLOR checkpoint')
    implicit.add_argument('config', help='the YOLOR config file')
    implicit.add_argument('checkpoint', help='a checkpoint of that config')
    implicit.add_argument(
        '--init',
        metavar='CHECKPOINT',
        help='an earlier checkpoint (e.g. epoch_1.pth) to measure the drift '
        'from (default: from the neutral element, 0 or 1)')
    implicit.add_argument(
        '--out', default='implicit.png', help='image file to write')

    forest = commands.add_parser(
        'forest', help='differences and their intervals, from work dirs')
    forest.add_argument('work_dirs', nargs='+', help='training work dirs')
    forest.add_argument(
        '--out', default='forest.png', help='image file to write')
    forest.add_argument(
        '--metrics',
        nargs='+',
        choices=[name for name, _ in TABLE_METRICS],
        help='metrics to draw (default: every one the runs have)')
    forest.add_argument(
        '--resamples',
        type=int,
        default=DEFAULT_RESAMPLES,
        help='resamples of each image interval; 0 draws none (default: '
        '%(default)s)')
    forest.add_argument(
        '--seed-interval',
        action='store_true',
        help='fail unless every row has at least 2 paired seeds')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.command == 'forest':
        try:
            comparisons = compare(
                args.work_dirs,
                resamples=args.resamples,
                require_seed_interval=args.seed_interval,
                log=lambda line: print(line, file=sys.stderr))
            plot_forest(comparisons, args.out, args.metrics)
        # WorkDirError, InputError (the inputs) and the plot's ValueError
        except ValueError as error:
            raise SystemExit(f'plot forest: {error}')
    elif args.command == 'curves':
        try:
            work_dirs = load_work_dirs(args.work_dirs)
        except WorkDirError as error:
            raise SystemExit(f'plot curves: {error}')
        plot_curves(work_dirs, args.out, args.per_seed)
    else:
        try:
            stats = load_implicit_stats(args.config, args.checkpoint,
                                        args.init)
        except (ImplicitPlotError, FileNotFoundError) as error:
            raise SystemExit(f'plot implicit: {error}')
        print(format_implicit_summary(stats))
        plot_implicits(stats, args.out, args.init)
    print(f'saved {args.out}')


if __name__ == '__main__':
    main()
