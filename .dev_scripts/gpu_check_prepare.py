# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Put into an ignored folder (default work_dirs/gpu_wheels) what the lent
GPU machine lacks to run .dev_scripts/gpu_check.sh: it has Python 3.12 with
torch 2.11 (CUDA 13), torchvision, numpy, scipy, matplotlib, opencv-python-
headless, pyyaml, rich, packaging, pillow, six, tqdm, ninja, but no
OpenMMLab packages and no registry. Wheels for cp312 manylinux x86_64 (or
pure Python), downloaded one by one with --no-deps, and mmcv 2.1.0's source
(PyPI has no wheel of it: it is built there). Prints each file's size and
the total, which must leave room in the device tool's 64 MiB (with the
working tree)."""
import argparse
import os
import os.path as osp
import subprocess
import sys

# What the machine lacks (docs/gpu_check.md): the OpenMMLab stack pinned as
# requirements/mminstall.txt, and the dependencies of mmengine, mmcv and
# mmdet not in the machine's image. opencv-python, which mmengine and mmcv
# name, is satisfied by the image's opencv-python-headless (both install
# the same cv2; the wheels go in with --no-deps).
WHEELS = (
    'mmengine==0.10.7',
    'mmdet==3.3.0',
    'pycocotools==2.0.11',
    'addict==2.4.0',
    'yapf==0.32.0',
    'termcolor==3.3.0',
    'terminaltables==3.1.10',
    'shapely==2.1.2',
    # building mmcv and mmengine's run-time pkg_resources need setuptools
    # < 81 (requirements/build.txt)
    'setuptools==79.0.1',
)
SOURCES = ('mmcv==2.1.0', )
PLATFORMS = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64',
             'manylinux_2_17_x86_64', 'manylinux2014_x86_64',
             'manylinux1_x86_64')
LIMIT_MIB = 64


def pip_download(spec: str, dest: str, binary: bool,
                 python_version: str) -> None:
    command = [
        sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '-d', dest,
        spec
    ]
    if binary:
        command += [
            '--only-binary=:all:', '--python-version', python_version,
            '--implementation', 'cp'
        ] + [arg for p in PLATFORMS for arg in ('--platform', p)]
    else:
        command += ['--no-binary=:all:']
    subprocess.run(command, check=True)


def tree_mib(repo: str) -> float:
    """Size of what the device tool sends besides carried paths: tracked
    and untracked-not-ignored files."""
    listed = subprocess.run([
        'git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'
    ],
                            cwd=repo,
                            check=True,
                            capture_output=True).stdout.split(b'\0')
    total = 0
    for name in filter(None, listed):
        path = osp.join(repo, name.decode())
        if osp.isfile(path) and not osp.islink(path):
            total += osp.getsize(path)
    return total / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--dest', default='work_dirs/gpu_wheels')
    parser.add_argument(
        '--python-version',
        default='3.12',
        help="the GPU machine's (default); another for a rehearsal")
    args = parser.parse_args()
    os.makedirs(args.dest, exist_ok=True)
    for spec in WHEELS:
        pip_download(spec, args.dest, True, args.python_version)
    for spec in SOURCES:
        pip_download(spec, args.dest, False, args.python_version)
    files = sorted(os.listdir(args.dest))
    total = 0
    for name in files:
        size = osp.getsize(osp.join(args.dest, name))
        total += size
        print(f'{size / 2**20:8.2f} MiB  {name}')
    wheels = total / 2**20
    tree = tree_mib(osp.dirname(osp.dirname(osp.abspath(__file__))))
    print(f'{wheels:8.2f} MiB  in {args.dest}; the working tree adds '
          f'{tree:.2f} MiB: {wheels + tree:.2f} of {LIMIT_MIB} MiB')
    if wheels + tree > LIMIT_MIB:
        sys.exit(f'error: {wheels + tree:.1f} MiB is over the device tool\'s '
                 f'{LIMIT_MIB} MiB; drop files from {args.dest}')


if __name__ == '__main__':
    main()
