# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Print the implicit parameter count of YOLOR detectors and its share of
the model. Without arguments: the six YOLOR configs of the seed tables."""
import argparse
import os.path as osp

from mmdet.utils import register_all_modules
from mmengine.config import Config

from mmdet_yolor.analysis.params import count_config_params, format_table
from mmdet_yolor.package_data import SEED_CONFIGS, config_path


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        'configs',
        nargs='*',
        default=[config_path(yolor) for _, yolor in SEED_CONFIGS],
        help='YOLOR config files (default: the seed-table YOLOR configs)')
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    counts = [
        count_config_params(
            osp.splitext(osp.basename(path))[0], Config.fromfile(path))
        for path in args.configs
    ]
    print(format_table(counts))


if __name__ == '__main__':
    main()
