#!/usr/bin/env bash
# Create ./.venv with the OpenMMLab stack this plugin runs on and the packages
# common mmdet models need (torchvision, scikit-learn, scikit-image), then
# install mmdet_yolor into it in editable mode. Called by `make install`.
#
# Idempotent: a stamp file records a hash of everything that decides the
# install (requirements files, setup.py, this script, the torch version, the
# torchvision index); when it matches and the links that setup.py makes in
# mmdet_yolor/.mim/ are there, the script exits at once.
#
# Environment:
#   PYTHON         interpreter used to create the venv (default: python3)
#   VENV           venv directory (default: .venv)
#   TORCH_VERSION  torch installed when the venv has none (default: 2.13.0).
#                  GPU users install their CUDA torch into the venv first
#                  (see docs/install.md, "GPU install"); an existing torch is kept.
#   MMENGINE_VERSION, MMDET_VERSION  other versions of these pure-Python
#                  packages than requirements/mminstall.txt pins, e.g.
#                  mmengine 0.10.4, mmdet 3.2.0 (make test-stacks takes them).
#   FORCE_CUDA=1   compile mmcv's CUDA ops even if torch sees no GPU.
#   MAX_JOBS       parallel compile jobs for mmcv (default: number of cores).
#   CFLAGS, CXXFLAGS  mmcv's compile flags (default: Python's), -g0 added.
#   MMCV_WHEEL_CACHE  where the mmcv wheels built here are kept
#                  (default: ~/.cache/mmdet_yolor/mmcv-wheels).
#   TORCHVISION_INDEX_URL  index to take torchvision from (default: pip's),
#                  e.g. https://download.pytorch.org/whl/cpu for a CPU torch.
set -euo pipefail

cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
LOG="$VENV/install.log"
STAMP="$VENV/.mmdet_yolor-install-stamp"

die() { echo "make install: $*" >&2; exit 1; }

# ---- prerequisites: one clear sentence each --------------------------------
command -v "$PYTHON" >/dev/null 2>&1 ||
    die "'$PYTHON' was not found; install Python 3.8-3.12 (or set PYTHON=/path/to/python3)."
"$PYTHON" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 12)))' ||
    die "$("$PYTHON" -V 2>&1) is not supported; mmcv 2.1.0 and mmdet 3.3.0 need Python 3.8-3.12 (set PYTHON=/path/to/python3.11)."
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 ||
    die "the Python 'venv' module is missing; install it (Debian/Ubuntu: apt install python3-venv)."
command -v "${CXX:-g++}" >/dev/null 2>&1 || command -v c++ >/dev/null 2>&1 ||
    die "no C++ compiler found; mmcv 2.1.0 compiles its ops from source, install one (Debian/Ubuntu: apt install g++)."
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
    die "the Python development headers are missing; install them (Debian/Ubuntu: apt install python3-dev)."

# The pinned versions unless MMENGINE_VERSION/MMDET_VERSION say otherwise.
MMENGINE_REQUIREMENT=${MMENGINE_VERSION:+mmengine==$MMENGINE_VERSION}
MMENGINE_REQUIREMENT=${MMENGINE_REQUIREMENT:-$(grep mmengine requirements/mminstall.txt)}
MMDET_REQUIREMENT=${MMDET_VERSION:+mmdet==$MMDET_VERSION}
MMDET_REQUIREMENT=${MMDET_REQUIREMENT:-$(grep mmdet requirements/mminstall.txt)}

stamp_value() {
    cat requirements/*.txt setup.py tools/misc/install_env.sh | sha256sum | cut -d' ' -f1
    echo "torch=$TORCH_VERSION $MMENGINE_REQUIREMENT $MMDET_REQUIREMENT force_cuda=${FORCE_CUDA:-0} torchvision_index=${TORCHVISION_INDEX_URL:-}"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ] && [ -e mmdet_yolor/.mim/configs ]; then
    echo "make install: $VENV is up to date."
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$(cd "$VENV/bin" && pwd)/python"
: > "$LOG"
START=$SECONDS

say() { printf '[%4ds] %s\n' $((SECONDS - START)) "$1"; }
step() {
    local title=$1; shift
    say "$title"
    if ! "$@" >>"$LOG" 2>&1; then
        echo "make install: step '$title' failed; last lines of $LOG:" >&2
        tail -n 25 "$LOG" >&2
        exit 1
    fi
}
pip_cmd() { "$PY" -m pip --disable-pip-version-check "$@"; }
pip_install() { pip_cmd install "$@"; }

# pip < 25.3 and setuptools < 80 (build.txt) still make `pip install -e` a
# `setup.py develop` install, the kind mmengine resolves `mmdet_yolor::` in.
step "build tools (pip<25.3, setuptools<80, wheel, ninja)" \
    pip_install 'pip<25.3' -r requirements/build.txt
if "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "         keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
    step "torch==$TORCH_VERSION" pip_install "torch==$TORCH_VERSION"
fi
# (torch's own version, not torch.__version__: PyPI's CUDA builds report
# 2.1.2+cu121, which no requirement on torch==2.1.2 matches; stderr: torch
# without numpy warns)
TORCH_INSTALLED=$("$PY" -c 'from importlib.metadata import version; print(version("torch"))')
# numpy and opencv by what this torch supports: torch < 2.3 was built for
# numpy 1 (beside numpy 2 `torch.from_numpy` raises "Numpy is not
# available"), and opencv-python >= 4.11 requires numpy 2, so such a torch
# gets numpy < 2 and opencv-python 4.10 (built for both). Every later pip
# call keeps to these constraints; the import check below proves the pair.
CONSTRAINTS="$VENV/stack-constraints.txt"
if "$PY" -c 'import re, sys, torch
sys.exit(tuple(map(int, re.match(r"(\d+)\.(\d+)", torch.__version__).groups())) >= (2, 3))' 2>/dev/null; then
    printf 'numpy<2\nopencv-python==4.10.0.84\n' > "$CONSTRAINTS"
    echo "         torch $TORCH_INSTALLED was built for numpy 1: numpy<2, opencv-python 4.10"
else
    : > "$CONSTRAINTS"
fi
pip_install() { pip_cmd install -c "$CONSTRAINTS" "$@"; }
step "mmengine, numpy, pycocotools, matplotlib, pytest, scikit-learn, scikit-image" \
    pip_install "$MMENGINE_REQUIREMENT" -r requirements/runtime.txt \
    -r requirements/tests.txt -r requirements/optional.txt

# torchvision must match torch: pip's resolver picks the version for the
# installed torch, which the constraint keeps. PyPI's torchvision wheels are
# CUDA builds that do not load with a CPU torch; one that does not work is
# removed again, with one line saying how to get a working one.
torchvision_check() {
    "$PY" -c 'import torch, torchvision; torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)' 2>&1
}
if torchvision_check >/dev/null; then
    echo "         keeping installed torchvision $("$PY" -c 'import torchvision; print(torchvision.__version__)')"
else
    say "torchvision matching torch $TORCH_INSTALLED"
    echo "torch==$TORCH_INSTALLED" > "$VENV/torch-constraint.txt"
    if pip_install -c "$VENV/torch-constraint.txt" \
            ${TORCHVISION_INDEX_URL:+--index-url "$TORCHVISION_INDEX_URL"} torchvision >>"$LOG" 2>&1; then
        if ! reason=$(torchvision_check); then
            found=$("$PY" -c 'from importlib.metadata import version; print(version("torchvision"))')
            "$PY" -m pip uninstall -y torchvision >>"$LOG" 2>&1 ||
                die "could not remove the torchvision $found that does not work; run \`$PY -m pip uninstall torchvision\`."
            echo "         torchvision left out: $found does not work with torch $TORCH_INSTALLED ($(tail -n 1 <<<"$reason")); for a CPU build run \`TORCHVISION_INDEX_URL=https://download.pytorch.org/whl/cpu make install\`."
        fi
    else
        echo "         torchvision left out: no version for torch $TORCH_INSTALLED was found (see $LOG); set TORCHVISION_INDEX_URL to an index that has one (CPU: https://download.pytorch.org/whl/cpu)."
    fi
fi
# mmcv: PyPI has only 2.1.0's source, compiled here against the venv's torch
# into a wheel kept in MMCV_WHEEL_CACHE under a key of what decides the
# build (Python, torch and its CUDA, the flags): later installs reuse it,
# and another torch or flag set gets its own build, where pip's wheel cache
# would hand back a wheel built for another torch.
# Flags: debug information of torch's templates is most of what the
# compiler writes, so the build gets Python's own CFLAGS (-O3 -DNDEBUG ...
# -g) plus -g0, which wins over -g. They are passed whole: setuptools'
# distutils uses $CFLAGS instead of Python's flags (the standard library's
# added to them), so a bare CFLAGS=-g0 would compile the ops unoptimised.
MMCV_REQUIREMENT=$(grep mmcv requirements/mminstall.txt)
PY_CFLAGS=$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("CFLAGS") or "")')
MMCV_CFLAGS="${CFLAGS:-$PY_CFLAGS} -g0"
MMCV_CXXFLAGS="${CXXFLAGS:-$PY_CFLAGS} -g0"
# torch >= 2.14's headers need C++20 (ATen.h stops with "#error C++20 or
# later"); mmcv 2.1.0 asks for C++17, so its compiler is then wrapped
# (tools/misc/cxx_with_std.sh). Part of the build's key only where it acts.
MMCV_CXX_STD=
grep -q 'C++20 or later' "$("$PY" -c 'import os, torch
print(os.path.join(os.path.dirname(torch.__file__), "include", "ATen", "ATen.h"))')" 2>/dev/null &&
    MMCV_CXX_STD=c++20
MMCV_BUILD="$MMCV_REQUIREMENT $("$PY" -c 'import sys, torch
print(f"python={sys.version.split()[0]} torch={torch.__version__} cuda={torch.version.cuda} gpu={torch.cuda.is_available()}")') force_cuda=${FORCE_CUDA:-0} arch=${TORCH_CUDA_ARCH_LIST:-} cflags=$MMCV_CFLAGS cxxflags=$MMCV_CXXFLAGS${MMCV_CXX_STD:+ cxx_std=$MMCV_CXX_STD}"
MMCV_WHEELS="${MMCV_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmdet_yolor/mmcv-wheels}/$(echo "$MMCV_BUILD" | sha256sum | cut -c1-16)"
MMCV_RECORD="$VENV/.mmcv-build"
mmcv_works() { "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; }
# Built in a temporary directory and moved into the cache whole, so that a
# failed or interrupted build leaves no wheel there.
build_mmcv_wheel() {
    local tmp status=0
    tmp=$(mktemp -d) && mkdir -p "$MMCV_WHEELS" || return 1
    if [ -n "$MMCV_CXX_STD" ]; then
        export MMCV_CXX_STD MMCV_REAL_CXX=${CXX:-c++}
        local CXX="$PWD/tools/misc/cxx_with_std.sh"
        export CXX
    fi
    CFLAGS="$MMCV_CFLAGS" CXXFLAGS="$MMCV_CXXFLAGS" MMCV_WITH_OPS=1 \
        MAX_JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)} \
        pip_cmd wheel --no-cache-dir --no-build-isolation --no-deps -w "$tmp" "$MMCV_REQUIREMENT" &&
        mv "$tmp"/mmcv-*.whl "$MMCV_WHEELS"/ || status=$?
    rm -rf "$tmp"
    return $status
}
install_mmcv_wheel() {
    "$PY" -m pip uninstall -y mmcv && pip_install "$MMCV_WHEELS"/mmcv-*.whl &&
        echo "$MMCV_BUILD" > "$MMCV_RECORD"
}
# An mmcv the user installed before the first `make install` (no stamp yet)
# is theirs: kept, now and later. One an earlier version of this script
# built without a record is rebuilt.
MMCV_USERS="mmcv installed before make install"
MMCV_RECORDED=$(cat "$MMCV_RECORD" 2>/dev/null || true)
if mmcv_works && [ "$MMCV_RECORDED" = "$MMCV_BUILD" ]; then
    echo "         keeping mmcv 2.1.0 with ops, built for this torch with these flags"
elif mmcv_works && { [ "$MMCV_RECORDED" = "$MMCV_USERS" ] ||
        { [ -z "$MMCV_RECORDED" ] && [ ! -f "$STAMP" ]; }; }; then
    echo "         keeping installed mmcv 2.1.0 with ops (installed before make install)"
    echo "$MMCV_USERS" > "$MMCV_RECORD"
else
    ls "$MMCV_WHEELS"/mmcv-*.whl >/dev/null 2>&1 ||
        step "mmcv==2.1.0 with compiled ops, built once for this torch (2 cores: ~6 min)" build_mmcv_wheel
    step "mmcv==2.1.0 (wheel in $MMCV_WHEELS)" install_mmcv_wheel
fi
step "$MMDET_REQUIREMENT" pip_install "$MMDET_REQUIREMENT"
# mmdeploy's ONNX export and ONNX Runtime backend (requirements/deploy.txt):
# pip resolves them beside the stack without changing torch, numpy or mmcv.
step "mmdeploy, onnx, onnxruntime (deploy.txt)" \
    pip_install -r requirements/deploy.txt
step "mmdet_yolor (editable)" pip_install --no-build-isolation --no-deps --no-use-pep517 -e .
# From / (a subshell), so that the repository is not on sys.path: this checks
# the install, including that mmengine finds the `mmdet_yolor::` configs.
check_install() (
    cd / && "$PY" -c 'import numpy, torch
torch.from_numpy(numpy.zeros(1))
import mmdet_yolor, mmcv.ops
from mmengine.hub import get_config
get_config("mmdet_yolor::fcos/fcos-yolor_r50-caffe_fpn_gn-head_1x_coco.py")'
)
step "import check" check_install

stamp_value > "$STAMP"
printf '[%4ds] done: activate with `source %s/bin/activate`\n' $((SECONDS - START)) "$VENV"
