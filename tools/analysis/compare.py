# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Print a markdown table comparing baseline and YOLOR runs from the final
validation metrics of their work dirs, in the style of the YOLOR authors'
MMDetection table. Work dirs of the same detector, config and variant are
seeds of one row (mean ± sample standard deviation)."""
import argparse

from mmdet_yolor.analysis.compare import compare, dump_json, format_table
from mmdet_yolor.analysis.work_dirs import WorkDirError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        'work_dirs', nargs='+', help='training work dirs to compare')
    parser.add_argument(
        '--json', metavar='OUT.json', help='also write the results as JSON')
    return parser.parse_args()


def main():
    args = parse_args()
    try:
        comparisons = compare(args.work_dirs)
    except WorkDirError as error:
        raise SystemExit(f'compare: {error}')
    print(format_table(comparisons))
    if args.json:
        dump_json(comparisons, args.json)


if __name__ == '__main__':
    main()
