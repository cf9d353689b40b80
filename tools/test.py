# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Test (and evaluate) a detector: mmdet 3.3.0's tools/test.py flags, plus
``--yolor`` to apply YOLOR to any mmdet config."""
import argparse

from mmdet_yolor import runs


def parse_args():
    parser = argparse.ArgumentParser(
        description='MMDet test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. '
        'If specified, it will be automatically saved '
        'to the work_dir/timestamp/show_dir')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    runs.add_yolor_argument(
        parser,
        help='rewrite the config to its YOLOR form ("all", "fa", "pr" or '
        '"foldable"), as in tools/train.py')
    runs.add_cfg_options_argument(parser)
    runs.add_launcher_arguments(parser)
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation')
    args = parser.parse_args()
    runs.set_local_rank(args)
    return args


def main():
    args = parse_args()
    with runs.exit_on_input_error():
        cfg = runs.prepare_test_config(
            args.config,
            args.checkpoint,
            work_dir=args.work_dir,
            show=args.show,
            show_dir=args.show_dir,
            wait_time=args.wait_time,
            tta=args.tta,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
            yolor=args.yolor)
        runs.test(cfg, out=args.out)


if __name__ == '__main__':
    main()
