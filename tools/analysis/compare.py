# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Print a markdown table comparing baseline and YOLOR runs from the final
validation metrics of their work dirs, in the style of the YOLOR authors'
MMDetection table, and whether each difference is real. Work dirs of the
same detector, config and variant are seeds of one row (mean ± sample
standard deviation). Baseline and YOLOR runs of the same randomness.seed
are paired: with two or more seeds, a Student-t 95 % interval of the mean
difference (training noise); for each seed whose runs kept their
predictions (tools/train.py keeps them in WORK_DIR/predictions/), a paired
bootstrap over the validation images (test-set sampling). Each row ends in
a verdict on box AP."""
import argparse
import sys

from mmdet_yolor import runs
from mmdet_yolor.analysis.compare import compare, dump_json, format_report
from mmdet_yolor.analysis.image_bootstrap import DEFAULT_RESAMPLES
from mmdet_yolor.analysis.work_dirs import WorkDirError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        'work_dirs', nargs='+', help='training work dirs to compare')
    parser.add_argument(
        '--json', metavar='OUT.json', help='also write the results as JSON')
    parser.add_argument(
        '--resamples',
        type=int,
        default=DEFAULT_RESAMPLES,
        help='resamples of each image bootstrap; 0 skips them (default: '
        '%(default)s)')
    parser.add_argument(
        '--bootstrap-seed',
        type=int,
        default=0,
        help='seed of the image resampling (default: %(default)s)')
    parser.add_argument(
        '--seed-interval',
        action='store_true',
        help='require the interval over seeds: fail unless every row has '
        'at least 2 paired seeds')
    return parser.parse_args()


def main():
    args = parse_args()
    with runs.exit_on_input_error():
        try:
            comparisons = compare(
                args.work_dirs,
                resamples=args.resamples,
                bootstrap_seed=args.bootstrap_seed,
                require_seed_interval=args.seed_interval,
                log=lambda line: print(line, file=sys.stderr, flush=True))
        except WorkDirError as error:
            raise SystemExit(f'compare: {error}')
    print(format_report(comparisons))
    if args.json:
        dump_json(comparisons, args.json)


if __name__ == '__main__':
    main()
