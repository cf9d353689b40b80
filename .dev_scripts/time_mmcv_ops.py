# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Time mmcv's compiled CPU ops, to check that a build's flags keep their
speed (see docs/install.md, "Requirements").

With ``--against DIR`` (an unpacked mmcv wheel, e.g. ``unzip
mmcv-2.1.0-*.whl -d DIR``) the installed build and that one are timed in
alternating processes and the table gives installed/other ratios, measured
in one run. A benchmark, not a test: run it on an idle machine.

Example::

    python .dev_scripts/time_mmcv_ops.py --against /tmp/mmcv-with-g --rounds 3
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from functools import partial


def op_cases():
    """The timed calls: detection ops on typical sizes, fixed inputs."""
    import torch
    from mmcv import ops

    torch.manual_seed(0)

    def boxes(num, size=256):
        corner = torch.rand(num, 2) * size
        return torch.cat([corner, corner + torch.rand(num, 2) * 64 + 4], 1)

    def rotated(num):
        return torch.cat([
            torch.rand(num, 2) * 256,
            torch.rand(num, 2) * 40 + 4,
            torch.rand(num, 1)
        ], 1)

    scores = torch.rand(3000)
    nms_boxes, rboxes = boxes(3000), rotated(800)
    feats = torch.randn(2, 64, 64, 64)
    image_index = torch.randint(0, 2, (512, 1)).float()
    rois = torch.cat([image_index, boxes(512) / 4], 1)
    rrois = torch.cat([torch.zeros(256, 1), rotated(256)], 1)
    rrois[:, 1:3] /= 4
    x, weight = torch.randn(1, 32, 48, 48), torch.randn(32, 32, 3, 3)
    offset, mask = torch.randn(1, 18, 48, 48) * 0.5, torch.rand(1, 9, 48, 48)
    return {
        'nms':
        partial(ops.nms, nms_boxes, scores, 0.5),
        'roi_align':
        partial(ops.roi_align, feats, rois, (7, 7), 1.0, 2),
        'box_iou_rotated':
        partial(ops.box_iou_rotated, rboxes[:300], rboxes[:300]),
        'nms_rotated':
        partial(ops.nms_rotated, rboxes, scores[:800], 0.5),
        'deform_conv2d':
        partial(ops.deform_conv2d, x, offset, weight, 1, 1),
        'modulated_deform_conv2d':
        partial(ops.modulated_deform_conv2d, x, offset, mask, weight, None, 1,
                1),
        'roi_align_rotated':
        partial(ops.roi_align_rotated, feats[:1], rrois, (7, 7), 1.0, 2),
    }


def time_ops(repeats: int) -> dict:
    """Median milliseconds of each op over ``repeats`` calls after 2
    untimed ones, the ops taking turns (the benchmark's timing loop), one
    thread."""
    import mmcv
    import torch

    from yolor_dev.benchmark import BenchmarkSettings, interleaved_median_ms

    torch.set_num_threads(1)
    with torch.no_grad():
        medians = interleaved_median_ms(
            op_cases(), BenchmarkSettings(warmup=2, repeats=repeats))
    return {'mmcv': os.path.dirname(mmcv.__file__), 'ms': medians}


def time_in_process(repeats: int, mmcv_dir: str = None) -> dict:
    """:func:`time_ops` in a new process, with ``mmcv_dir`` first on the
    path if given."""
    env = dict(os.environ)
    if mmcv_dir:
        env['PYTHONPATH'] = os.pathsep.join(
            filter(None, [mmcv_dir, env.get('PYTHONPATH')]))
    out = subprocess.run(
        [sys.executable, __file__, '--repeats',
         str(repeats), '--json-only'],
        env=env,
        capture_output=True,
        text=True,
        check=True).stdout
    return json.loads(out.splitlines()[-1])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--against',
        metavar='DIR',
        help='an unpacked mmcv wheel to compare the installed build with')
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument(
        '--rounds',
        type=int,
        default=3,
        help='processes per build, alternating (default: %(default)s)')
    parser.add_argument('--json-only', action='store_true', help='internal')
    return parser.parse_args()


def main():
    args = parse_args()
    if args.json_only:
        print(json.dumps(time_ops(args.repeats)))
        return
    if args.against and not os.path.isdir(os.path.join(args.against, 'mmcv')):
        sys.exit(f'--against {args.against}: no mmcv/ in it; unpack a wheel '
                 f'there (unzip mmcv-2.1.0-*.whl -d {args.against}).')
    builds = {'installed': None}
    if args.against:
        builds['other'] = args.against
    runs = {name: [] for name in builds}
    for _ in range(args.rounds):
        for name, mmcv_dir in builds.items():
            runs[name].append(time_in_process(args.repeats, mmcv_dir))
    for name, results in runs.items():
        print(f'{name}: {results[0]["mmcv"]}')
    header = '| op | ' + ' | '.join(f'{name} (ms)' for name in runs)
    print(header + (' | installed / other |' if args.against else ' |'))
    print('| :-- |' + ' --: |' * (len(runs) + bool(args.against)))
    for op in runs['installed'][0]['ms']:
        medians = [
            statistics.median(r['ms'][op] for r in results)
            for results in runs.values()
        ]
        row = f'| {op} | ' + ' | '.join(f'{m:.2f}' for m in medians)
        if args.against:
            row += f' | {medians[0] / medians[1]:.3f}x'
        print(row + ' |')


if __name__ == '__main__':
    main()
