# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Check that YOLOR works on a config, as one row of the zoo sweep
(.dev_scripts/zoo_sweep.py) in this process: the baseline and its YOLOR
form train a few steps on generated inputs and predict, the YOLOR model is
folded; print which sites got implicits, what folds and whether each check
passed. Exit status 0 when the config is covered (ok or partial), else 1."""
import argparse
import json
import os.path as osp
import sys
from dataclasses import asdict

from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from mmdet_yolor.analysis.config_check import (COVERED, SweepSettings,
                                               check_config, format_check,
                                               format_plan, timed_progress)
from mmdet_yolor.analysis.config_check.settings import add_settings_arguments
from mmdet_yolor.toggle import is_yolorized, unyolorize


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='the baseline config to check')
    runs.add_yolor_argument(
        parser,
        help='the YOLOR variant to check (default: %(default)s)',
        default='all')
    runs.add_cfg_options_argument(parser)
    add_settings_arguments(parser)
    parser.add_argument(
        '--json', metavar='OUT', help='also write the result to OUT as JSON')
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    settings = SweepSettings(image_size=args.image_size, steps=args.steps)
    with runs.exit_on_input_error():
        cfg = runs.load_config(args.config, args.cfg_options)
    if is_yolorized(cfg):
        # the check applies --yolor to the baseline itself
        print(f'{args.config} is in YOLOR form: checking its baseline '
              f'(unyolorize) with --yolor {args.yolor}')
        cfg = unyolorize(cfg)
    print(format_plan(cfg, args.config, settings, args.yolor), flush=True)
    folder, name = osp.split(osp.abspath(args.config))
    result = check_config(cfg, folder, name, settings, args.yolor,
                          timed_progress())
    print(format_check(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(asdict(result), f, indent=2)
    sys.exit(0 if result.row.status in COVERED else 1)


if __name__ == '__main__':
    main()
