# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Train a detector, with or without YOLOR: mmdet 3.3.0's tools/train.py
flags, plus ``--yolor`` to apply YOLOR to any mmdet config."""
import argparse

from mmdet_yolor import runs


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR.')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    runs.add_yolor_argument(
        parser,
        help='rewrite the config to its YOLOR form: "all" (default) adds '
        'feature alignment and prediction refinement, "fa" or "pr" only one '
        'of them, "foldable" both in the placement that folds away '
        'completely at inference. The work dir defaults to '
        'work_dirs/<config>_yolor[-<part>].')
    runs.add_cfg_options_argument(parser)
    runs.add_launcher_arguments(parser)
    args = parser.parse_args()
    runs.set_local_rank(args)
    return args


def main():
    args = parse_args()
    with runs.exit_on_input_error():
        cfg = runs.prepare_train_config(
            args.config,
            work_dir=args.work_dir,
            resume=args.resume,
            amp=args.amp,
            auto_scale_lr=args.auto_scale_lr,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
            yolor=args.yolor)
        runs.train(cfg)


if __name__ == '__main__':
    main()
