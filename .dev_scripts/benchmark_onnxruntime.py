# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Benchmark in ONNX Runtime the mmdeploy exports of the baseline, of YOLOR
folded (paper placement) and of YOLOR folded (foldable placement), in one
run: graph nodes and median latency, the YOLOR rows as ratios to the
baseline. A benchmark, not a test: run it on an idle machine."""
import argparse

from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from yolor_dev.benchmark import dump_json
from yolor_dev.onnxruntime_benchmark import (OnnxRuntimeSettings, format_table,
                                             run_onnxruntime_benchmark)


def parse_args():
    defaults = OnnxRuntimeSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        'config',
        help='a baseline config, or a YOLOR config in the paper placement '
        '(the baseline is its plain form)')
    parser.add_argument(
        '--checkpoint',
        help='baseline weights for every variant (default: the '
        'initialisation, on which NMS sees few boxes)')
    parser.add_argument(
        '--image-size',
        type=int,
        default=defaults.image_size,
        help='side of the square network input (default: %(default)s)')
    parser.add_argument('--warmup', type=int, default=defaults.warmup)
    parser.add_argument(
        '--repeats',
        type=int,
        default=defaults.repeats,
        help='timed runs per variant; the median is reported')
    parser.add_argument(
        '--threads',
        type=int,
        default=defaults.threads,
        help='ONNX Runtime intra-op threads, 0 lets it choose (default: '
        '%(default)s)')
    parser.add_argument(
        '--work-dir', help='keep the exports here (default: a temporary dir)')
    parser.add_argument('--json', help='also write the results to this file')
    runs.add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    with runs.exit_on_input_error():
        cfg = runs.load_config(args.config, args.cfg_options)
        settings = OnnxRuntimeSettings(
            image_size=args.image_size,
            warmup=args.warmup,
            repeats=args.repeats,
            threads=args.threads)
        results = run_onnxruntime_benchmark(cfg, settings, args.work_dir,
                                            args.checkpoint)
    print(format_table(results))
    if args.json:
        dump_json(results, settings, args.json)


if __name__ == '__main__':
    main()
