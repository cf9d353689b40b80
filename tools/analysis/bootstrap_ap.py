# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Is YOLOR's difference larger than test-set sampling? A paired bootstrap
of COCO AP over the images of one annotation file.

Both prediction files (COCO results JSON, as CocoMetric writes with
outfile_prefix, or the .pkl of tools/test.py --out) are matched by
pycocotools once; then box (and mask) AP, AP50, AP75, APs, APm and APl of
both models are computed on RESAMPLES resamples of the images, drawn with
replacement and shared by both models. Prints a markdown table of the
full-set values, the difference, its 95 % percentile interval and the
share of resamples in which YOLOR is ahead; --json also writes them
(values as mmdet logs them, 0-1). The interval captures test-set sampling
only, not training noise (compare seeds for that: tools/analysis/
compare.py)."""
import argparse
import json
import sys

from mmdet_yolor import runs
from mmdet_yolor.analysis.image_bootstrap import (DEFAULT_RESAMPLES,
                                                  bootstrap_files,
                                                  format_bootstrap_table)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('ann_file', help='COCO annotation file (ANN.json)')
    parser.add_argument('baseline', help='baseline predictions (.json/.pkl)')
    parser.add_argument('yolor', help='YOLOR predictions (.json/.pkl)')
    parser.add_argument(
        '--resamples',
        type=int,
        default=DEFAULT_RESAMPLES,
        help='bootstrap resamples (default: %(default)s)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the resampling (default: %(default)s)')
    parser.add_argument(
        '--iou-type',
        nargs='+',
        default=['bbox'],
        choices=['bbox', 'segm'],
        help='box and/or mask AP (default: %(default)s)')
    parser.add_argument(
        '--json', metavar='OUT.json', help='also write the results as JSON')
    return parser.parse_args()


def main():
    args = parse_args()
    with runs.exit_on_input_error():
        result = bootstrap_files(
            args.ann_file,
            args.baseline,
            args.yolor,
            iou_types=args.iou_type,
            resamples=args.resamples,
            seed=args.seed,
            log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_bootstrap_table(result))
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as file:
            json.dump(result.to_dict(), file, indent=2)


if __name__ == '__main__':
    main()
