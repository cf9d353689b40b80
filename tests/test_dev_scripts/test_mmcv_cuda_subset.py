# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""What the build of mmcv's CUDA subset reads off the machine (the build
itself runs in .dev_scripts/gpu_check.py's cuda_ops section, on a GPU)."""
import sys

from yolor_dev.mmcv_cuda_subset import (LIBRARY_HEADERS, cxx_standard,
                                        library_include_dirs)


def test_cxx_standard_is_read_from_the_headers(tmp_path):
    aten = tmp_path / 'ATen'
    aten.mkdir()
    (aten / 'ATen.h').write_text(
        '#error C++20 or later compatible compiler is required to use ATen.')
    assert cxx_standard(str(tmp_path)) == 'c++20'
    (aten / 'ATen.h').write_text('#include <c10/core/Allocator.h>')
    assert cxx_standard(str(tmp_path)) == 'c++17'


def test_library_headers_come_from_pip_only_where_the_toolkit_lacks_them(
        tmp_path, monkeypatch):
    site = tmp_path / 'site'
    for library, header in (('cusparse', 'cusparse.h'),
                            ('cublas', 'cublas_v2.h'), ('cublas',
                                                        'cublasLt.h'),
                            ('cusolver', 'cusolverDn.h'), ('cuda_runtime',
                                                           'cuda_runtime.h')):
        folder = site / 'nvidia' / library / 'include'
        folder.mkdir(parents=True, exist_ok=True)
        (folder / header).write_text('')
    monkeypatch.setattr(sys, 'path', [str(site)])
    toolkit = tmp_path / 'cuda' / 'include'
    toolkit.mkdir(parents=True)
    # a compiler-only toolkit: the three libraries, never the runtime
    assert library_include_dirs(str(toolkit)) == [
        str(site / 'nvidia' / library / 'include')
        for library in ('cusparse', 'cublas', 'cusolver')
    ]
    # a full toolkit: nothing from pip
    for header in LIBRARY_HEADERS:
        (toolkit / header).write_text('')
    assert library_include_dirs(str(toolkit)) == []
