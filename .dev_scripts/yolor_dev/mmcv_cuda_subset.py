# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""mmcv 2.1.0's CUDA NMS and RoIAlign kernels as a small torch extension.

Building all of mmcv's CUDA ops takes far longer than a 15-minute GPU lease
allows; the kernels the seed detectors use are two ``.cu`` files. This
compiles those files of mmcv's source, unchanged, with a binding of their
launchers, for the GPU found only (``TORCH_CUDA_ARCH_LIST`` from
``torch.cuda.get_device_capability()``), with every core. ``compile_only``
runs nvcc on the sources alone, without a GPU or a CUDA torch build at run
time (a rehearsal of the build on a machine with nvcc).
"""
import glob
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional, Sequence

CUDA_SOURCES = ('mmcv/ops/csrc/pytorch/cuda/nms_cuda.cu',
                'mmcv/ops/csrc/pytorch/cuda/roi_align_cuda.cu')
INCLUDE_DIRS = ('mmcv/ops/csrc/common', 'mmcv/ops/csrc/common/cuda')

BINDING = r'''
#include <torch/extension.h>
using at::Tensor;

Tensor NMSCUDAKernelLauncher(Tensor boxes, Tensor scores, float iou_threshold,
                             int offset);
void ROIAlignForwardCUDAKernelLauncher(Tensor input, Tensor rois,
                                       Tensor output, Tensor argmax_y,
                                       Tensor argmax_x, int aligned_height,
                                       int aligned_width, float spatial_scale,
                                       int sampling_ratio, int pool_mode,
                                       bool aligned);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("nms", &NMSCUDAKernelLauncher, "mmcv's CUDA NMS: kept indices");
  m.def("roi_align_forward", &ROIAlignForwardCUDAKernelLauncher,
        "mmcv's CUDA RoIAlign forward (pool_mode 1: avg)");
}
'''


def arch_list() -> str:
    """``TORCH_CUDA_ARCH_LIST`` for the GPU of this machine, e.g.
    ``'9.0'``."""
    import torch
    major, minor = torch.cuda.get_device_capability()
    return f'{major}.{minor}'


def cxx_standard(torch_include: str) -> str:
    """The C++ standard a torch build's headers need: mmcv 2.1's setup.py
    asks for C++14, torch 2.1 needs 17, and torch 2.14's ATen.h refuses
    anything before 20 (read from the header, not the version)."""
    with open(osp.join(torch_include, 'ATen', 'ATen.h')) as f:
        return 'c++20' if 'C++20 or later' in f.read() else 'c++17'


# Headers of CUDA libraries that torch's CUDA headers include (ATen/cuda/
# CUDAContextLight.h): a toolkit with the compiler alone lacks them.
LIBRARY_HEADERS = ('cusparse.h', 'cublas_v2.h', 'cublasLt.h', 'cusolverDn.h')


def library_include_dirs(cuda_include: Optional[str]) -> List[str]:
    """Folders holding the :data:`LIBRARY_HEADERS` that ``cuda_include``
    (the toolkit's) lacks, from the CUDA libraries pip installed beside
    torch (``nvidia/<library>/include``). Only those: another copy of the
    runtime's headers than the compiler's own fails to compile."""
    found = []
    for header in LIBRARY_HEADERS:
        if cuda_include and osp.isfile(osp.join(cuda_include, header)):
            continue
        for entry in sys.path:
            hits = sorted(
                glob.glob(osp.join(entry, 'nvidia', '*', 'include', header)))
            if hits:
                folder = osp.dirname(hits[0])
                if folder not in found:
                    found.append(folder)
                break
    return found


def build_subset(mmcv_src: str, build_dir: str, verbose: bool = False):
    """Compile and load the extension; returns the module (``nms``,
    ``roi_align_forward``)."""
    from torch.utils.cpp_extension import CUDA_HOME, load

    # torch's cpp_extension picks the C++ standard its headers need
    os.environ.setdefault('TORCH_CUDA_ARCH_LIST', arch_list())
    os.environ.setdefault('MAX_JOBS', str(os.cpu_count() or 1))
    os.makedirs(build_dir, exist_ok=True)
    binding = osp.join(build_dir, 'binding.cpp')
    with open(binding, 'w') as f:
        f.write(BINDING)
    return load(
        name='mmcv_cuda_subset',
        sources=[binding] + [osp.join(mmcv_src, s) for s in CUDA_SOURCES],
        extra_include_paths=[osp.join(mmcv_src, d) for d in INCLUDE_DIRS] +
        library_include_dirs(CUDA_HOME and osp.join(CUDA_HOME, 'include')),
        extra_cflags=['-DMMCV_WITH_CUDA'],
        extra_cuda_cflags=['-DMMCV_WITH_CUDA'],
        build_directory=build_dir,
        verbose=verbose)


def compile_only(mmcv_src: str,
                 out_dir: str,
                 torch_include: List[str],
                 arch: str = 'sm_90',
                 nvcc: str = 'nvcc',
                 extra_include: Sequence[str] = ()):
    """nvcc ``-c`` of each CUDA source against ``torch_include`` (a CUDA
    torch build's include folders, its ``include`` first) and
    ``extra_include`` (Python's, CUDA libraries' headers).

    Returns:
        list[dict]: ``{source, returncode, output}`` per source.
    """
    os.makedirs(out_dir, exist_ok=True)
    includes = [osp.join(mmcv_src, d)
                for d in INCLUDE_DIRS] + torch_include + list(extra_include)
    results = []
    for source in CUDA_SOURCES:
        obj = osp.join(out_dir, osp.basename(source) + '.o')
        command = [
            nvcc, '-c',
            osp.join(mmcv_src, source), '-o', obj,
            f'-gencode=arch=compute_{arch[3:]},code={arch}',
            '--expt-relaxed-constexpr', '-Xcompiler', '-fPIC',
            '-D__CUDA_NO_HALF_OPERATORS__', '-D__CUDA_NO_HALF_CONVERSIONS__',
            '-D__CUDA_NO_HALF2_OPERATORS__', '-DTORCH_EXTENSION_NAME=subset',
            '-D_GLIBCXX_USE_CXX11_ABI=1', '-DMMCV_WITH_CUDA',
            f'-std={cxx_standard(torch_include[0])}'
        ] + [f'-I{d}' for d in includes]
        result = subprocess.run(command, capture_output=True, text=True)
        results.append(
            dict(
                source=source,
                returncode=result.returncode,
                output=(result.stdout + result.stderr)[-4000:]))
    return results
