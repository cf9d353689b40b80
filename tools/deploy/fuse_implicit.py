# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fold the implicit knowledge of a trained YOLOR checkpoint into the
neighbouring layers, report what was folded and what was kept, and write
the folded checkpoint."""
import argparse

from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from mmdet_yolor.deploy import fuse_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='the YOLOR config of the checkpoint')
    parser.add_argument('checkpoint', help='the trained checkpoint')
    parser.add_argument('out', help='where to write the folded checkpoint')
    runs.add_yolor_argument(
        parser,
        help='apply yolorize to a baseline config first, as the checkpoint '
        'was trained with tools/train.py --yolor')
    runs.add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    with runs.exit_on_input_error():
        cfg = runs.load_config(args.config, args.cfg_options, args.yolor)
        report, config = fuse_checkpoint(cfg, args.checkpoint, args.out)
    print(report.format())
    if report.complete:
        print(f'Everything folded: {args.out} is a plain mmdet checkpoint of '
              f'{config} (mmdet_yolor is not needed to use it).')
    else:
        with_yolor = f' with --yolor {args.yolor}' if args.yolor else ''
        print(f'{args.out} loads into {config}{with_yolor}; the kept '
              f'implicits still run there.')


if __name__ == '__main__':
    main()
