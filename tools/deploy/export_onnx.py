# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Export a trained YOLOR (or plain mmdet) checkpoint with mmdeploy for ONNX
Runtime (Sparse R-CNN, which mmdeploy cannot export, with torch.onnx
directly): fold the implicit knowledge, convert with dynamic input shapes and
write WORK_DIR/end2end.onnx with the deploy and model configs mmdeploy's
tools read; then check on a few images that ONNX Runtime detects what the
PyTorch model detects, and compare the graph's ops with the baseline
config's."""
import argparse
import os.path as osp
import sys

import mmcv
from mmdet.utils import register_all_modules

from mmdet_yolor import runs
from mmdet_yolor.deploy.onnx_export import (export_checkpoint, graph_op_counts,
                                            kept_implicit_ops)
from mmdet_yolor.deploy.verify import (OpComparison, ParityChecker,
                                       dataset_images)
from mmdet_yolor.toggle import unyolorize


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('config', help='the config of the checkpoint')
    parser.add_argument('checkpoint', help='the trained checkpoint')
    parser.add_argument(
        '--work-dir', required=True, help='where to write the export')
    parser.add_argument(
        '--no-fold',
        action='store_true',
        help='export the implicit layers as trained, without folding')
    parser.add_argument(
        '--img',
        nargs='+',
        help='images to check the export on (default: the first three of '
        "the config's test dataset)")
    parser.add_argument(
        '--compare-baseline',
        action='store_true',
        help="also export the baseline config's model and compare the op "
        'counts of the two graphs')
    runs.add_yolor_argument(
        parser,
        help='apply yolorize to a baseline config first, as the checkpoint '
        'was trained with tools/train.py --yolor')
    runs.add_cfg_options_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    register_all_modules()
    with runs.exit_on_input_error():
        cfg = runs.load_config(args.config, args.cfg_options, args.yolor)
        images = [(path, mmcv.imread(path))
                  for path in args.img] if args.img else dataset_images(cfg)
        export = export_checkpoint(cfg, args.checkpoint, args.work_dir,
                                   images[0][1], not args.no_fold)
    report = export.prepared.report
    if report is not None and report.sites:
        print(report.format())
    if export.mmdeploy_failure:
        print(f'{export.prepared.model_cfg.model.type}: exported with '
              f'torch.onnx directly, not mmdeploy: {export.mmdeploy_failure}')
    ops = graph_op_counts(export.onnx_file)
    sdk = '' if export.mmdeploy_failure else " and mmdeploy's SDK files"
    print(f'wrote {export.onnx_file} ({sum(ops.values())} nodes), '
          f'{export.deploy_config_file}, {export.model_config_file}{sdk}')
    checker = ParityChecker(export)
    names = [
        f'image {i}/{len(images)} ({name})'
        for i, (name, _) in enumerate(images, 1)
    ]
    # the export traced the first image: PyTorch's outputs on it are known
    checks = [checker.check_traced(names[0])] + checker.check_images(
        [(name, image) for name, (_, image) in zip(names[1:], images[1:])])
    for check in checks:
        print(check.format())
    passed = all(check.passed for check in checks)
    if args.compare_baseline:
        # op counts do not depend on the weights: an initialised model
        baseline_export = export_checkpoint(
            unyolorize(cfg),
            None,
            osp.join(args.work_dir, 'baseline'),
            images[0][1],
            fold=False)
        comparison = OpComparison(ops,
                                  graph_op_counts(baseline_export.onnx_file),
                                  kept_implicit_ops(export.prepared.model))
        print(f'ops beside the baseline config ({baseline_export.onnx_file}):')
        print(comparison.format())
        passed = passed and comparison.explained
    if not passed:
        sys.exit(1)


if __name__ == '__main__':
    main()
