# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Benchmark baseline vs YOLOR vs YOLOR folded in one run: parameters,
FLOPs, inference latency, training-step time and peak memory, the YOLOR
rows as ratios to the baseline; with --compile also the inference latency
under torch.compile and its frames, graph breaks and recompiles. A
benchmark, not a test: run it on an idle machine. Small inputs
(--image-size 128 --batch-size 1) show where Python overhead counts, as on
a GPU."""
import argparse

from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from yolor_dev.benchmark import (BenchmarkSettings, dump_json, format_table,
                                 run_benchmark)


def parse_args():
    defaults = BenchmarkSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        'config',
        help='a baseline config (YOLOR is applied with --yolor) or '
        'a YOLOR config (the baseline is its plain form)')
    runs.add_yolor_argument(
        parser,
        default=defaults.yolor,
        help='YOLOR variant of a baseline config (default: %(default)s)')
    parser.add_argument('--image-size', type=int, default=defaults.image_size)
    parser.add_argument('--batch-size', type=int, default=defaults.batch_size)
    parser.add_argument('--warmup', type=int, default=defaults.warmup)
    parser.add_argument(
        '--repeats',
        type=int,
        default=defaults.repeats,
        help='timed steps per variant; the median is reported')
    parser.add_argument(
        '--device', default=defaults.device, choices=['cpu', 'cuda'])
    parser.add_argument(
        '--compile',
        nargs='?',
        const='inductor',
        metavar='BACKEND',
        help='also time each model under torch.compile with this backend '
        '(default when given: inductor)')
    parser.add_argument('--json', help='also write the results to this file')
    runs.add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    with runs.exit_on_input_error():
        cfg = runs.load_config(args.config, args.cfg_options)
    settings = BenchmarkSettings(
        image_size=args.image_size,
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        device=args.device,
        yolor=args.yolor,
        compile=args.compile)
    results = run_benchmark(cfg, settings)
    print(format_table(results))
    if args.json:
        dump_json(results, settings, args.json)


if __name__ == '__main__':
    main()
