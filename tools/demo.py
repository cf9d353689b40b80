# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The main job: train detectors with and without YOLOR on the embedded
synthetic shapes data (generated on first use), evaluate, print the
seed-style comparison table with the intervals of the difference and a
verdict, and draw the intervals, the curves and the detections. Finished
trainings of an earlier run with the same settings are kept. `make demo`
runs it."""
import argparse

from mmdet_yolor import runs
from mmdet_yolor.demo import (DEFAULT_DETECTORS, DEMO_CONFIGS, DemoSettings,
                              run_demo)


def parse_args():
    defaults = DemoSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        '--detectors',
        nargs='+',
        default=list(DEFAULT_DETECTORS),
        choices=sorted(DEMO_CONFIGS),
        help='detectors to compare (default: %(default)s)')
    parser.add_argument(
        '--seeds',
        nargs='+',
        type=int,
        default=list(defaults.seeds),
        help='one baseline and one YOLOR run per seed; several seeds give '
        'mean ± std and the 95 %% interval of the difference over seeds '
        '(default: %(default)s)')
    parser.add_argument(
        '--epochs',
        type=int,
        help='training epochs (default: the configs\' schedule)')
    parser.add_argument(
        '--jobs',
        type=int,
        default=defaults.jobs,
        help='trainings at the same time, sharing the CPU cores '
        '(default: %(default)s)')
    runs.add_yolor_argument(
        parser,
        default=defaults.yolor,
        help='YOLOR variant compared with the baseline; "foldable" is the '
        'placement that folds away completely (default: %(default)s)')
    parser.add_argument(
        '--work-dir',
        default=defaults.work_dir,
        help='where runs, table and plots go (default: %(default)s)')
    parser.add_argument(
        '--data-root', help='generated data (default: data/shapes/)')
    parser.add_argument('--num-train', type=int, help='training images')
    parser.add_argument('--num-val', type=int, help='validation images')
    runs.add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    generator = {
        key: value
        for key, value in (('num_train', args.num_train),
                           ('num_val', args.num_val)) if value is not None
    }
    settings = DemoSettings(
        detectors=args.detectors,
        seeds=args.seeds,
        epochs=args.epochs,
        jobs=args.jobs,
        yolor=args.yolor,
        work_dir=args.work_dir,
        data_root=args.data_root,
        generator=generator,
        cfg_options=args.cfg_options)
    with runs.exit_on_input_error():
        print(run_demo(settings))


if __name__ == '__main__':
    main()
