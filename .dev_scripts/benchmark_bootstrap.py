# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Benchmark the paired image bootstrap (tools/analysis/bootstrap_ap.py)
on a COCO-sized synthetic case (5,000 images, 80 categories, 100
detections an image, 1,000 resamples by default): prints the seconds of
loading, pycocotools' matching of both files, the resampling and the whole
command, and the largest difference of its full-set values from
pycocotools' COCOeval.stats. A benchmark, not a test: run it on an idle
machine."""
import argparse
import json
import tempfile

from yolor_dev.bootstrap_benchmark import (CaseSettings, run_benchmark,
                                           write_case)


def parse_args():
    defaults = CaseSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--images', type=int, default=defaults.images)
    parser.add_argument('--categories', type=int, default=defaults.categories)
    parser.add_argument('--detections', type=int, default=defaults.detections)
    parser.add_argument('--resamples', type=int, default=1000)
    parser.add_argument('--json', metavar='OUT.json', help='also write JSON')
    return parser.parse_args()


def main():
    args = parse_args()
    settings = CaseSettings(
        images=args.images,
        categories=args.categories,
        detections=args.detections)
    with tempfile.TemporaryDirectory() as out_dir:
        files = write_case(settings, out_dir)
        result = run_benchmark(*files, resamples=args.resamples)
    seconds = result['seconds']
    print(f'{settings.images} images, {settings.categories} categories, '
          f'{result["detections"]} detections (both files), '
          f'{args.resamples} resamples')
    print('| stage | seconds |\n| :-- | --: |')
    for stage in ('load', 'match', 'resample', 'command'):
        print(f'| {stage} | {seconds[stage]:.1f} |')
    print(f'largest difference from pycocotools: '
          f'{result["max_difference"]:.2e}')
    if args.json:
        with open(args.json, 'w', encoding='utf-8') as file:
            json.dump(result, file, indent=2)


if __name__ == '__main__':
    main()
