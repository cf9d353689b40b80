# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What YOLOR costs on a GPU machine, and whether it holds there: training
steps (fp32, AMP fp16 and bf16), peak memory, inference unfolded, folded
and compiled, fold parity, mmcv's CUDA ops against the CPU and, with 2
GPUs, a 2-process nccl run; writes OUT/gpu_check.md (one table) and
OUT/gpu_check.json after every section. ``--device cpu --quick`` runs the
same code on shrunk models. docs/gpu_check.md says how to run it on the
lent GPU machine (.dev_scripts/gpu_check.sh)."""
import argparse

from mmdet.utils import register_all_modules

import mmdet_yolor  # noqa: F401  (registers the YOLOR modules)
from yolor_dev.gpu_check import (DETECTORS, SECTIONS, GPUCheckSettings,
                                 run_gpu_check)


def parse_args():
    defaults = GPUCheckSettings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        '--device', default=defaults.device, choices=['cuda', 'cpu'])
    parser.add_argument(
        '--quick',
        action='store_true',
        help='shrunk models, tiny images, one timed step')
    parser.add_argument('--out', default=defaults.out)
    parser.add_argument(
        '--budget',
        type=float,
        default=defaults.budget_s,
        help='seconds for the whole run; later sections are reported as '
        'skipped (default: %(default)s)')
    parser.add_argument(
        '--detectors',
        nargs='+',
        choices=list(DETECTORS),
        default=list(DETECTORS))
    parser.add_argument(
        '--sections', nargs='+', choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        '--mmcv-src',
        help="mmcv 2.1.0's unpacked source, to build its CUDA NMS and "
        'RoIAlign for this GPU (section cuda_ops)')
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    settings = GPUCheckSettings(
        device=args.device,
        quick=args.quick,
        out=args.out,
        budget_s=args.budget,
        detectors=args.detectors,
        mmcv_src=args.mmcv_src,
        sections=args.sections)
    run_gpu_check(settings)
    with open(f'{settings.out}/gpu_check.md') as f:
        print(f.read())


if __name__ == '__main__':
    main()
