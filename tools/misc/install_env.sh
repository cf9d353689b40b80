#!/usr/bin/env bash
# Create ./.venv with the OpenMMLab stack this plugin runs on, then install
# mmdet_yolor into it in editable mode. Called by `make install`.
#
# Idempotent: a stamp file records a hash of everything that decides the
# install (requirements files, setup.py, this script, the torch version); when
# it matches, the script exits at once.
#
# Environment:
#   PYTHON         interpreter used to create the venv (default: python3)
#   VENV           venv directory (default: .venv)
#   TORCH_VERSION  torch installed when the venv has none (default: 2.13.0).
#                  GPU users install their CUDA torch into the venv first
#                  (see README, "GPU install"); an existing torch is kept.
#   FORCE_CUDA=1   compile mmcv's CUDA ops even if torch sees no GPU.
#   MAX_JOBS       parallel compile jobs for mmcv (default: number of cores).
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

stamp_value() {
    cat requirements/*.txt setup.py tools/misc/install_env.sh | sha256sum | cut -d' ' -f1
    echo "torch=$TORCH_VERSION force_cuda=${FORCE_CUDA:-0}"
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ]; then
    echo "make install: $VENV is up to date."
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
: > "$LOG"
START=$SECONDS

step() {
    local title=$1; shift
    printf '[%4ds] %s\n' $((SECONDS - START)) "$title"
    if ! "$@" >>"$LOG" 2>&1; then
        echo "make install: step '$title' failed; last lines of $LOG:" >&2
        tail -n 25 "$LOG" >&2
        exit 1
    fi
}
pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }

step "build tools (setuptools<81, wheel, ninja)" pip_install -r requirements/build.txt
if "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "         keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
    step "torch==$TORCH_VERSION" pip_install "torch==$TORCH_VERSION"
fi
step "mmengine, numpy, pycocotools, matplotlib, pytest" \
    pip_install "$(grep mmengine requirements/mminstall.txt)" -r requirements/runtime.txt -r requirements/tests.txt
if "$PY" -c 'import mmcv, mmcv.ops; assert mmcv.__version__ == "2.1.0"' >/dev/null 2>&1; then
    echo "         keeping installed mmcv 2.1.0 with ops"
else
    # PyPI has only mmcv 2.1.0's source: compile it against the venv's torch.
    # The first build takes ~10 minutes on 2 cores; pip's wheel cache makes
    # later installs on the same machine instant.
    export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc 2>/dev/null || echo 2)}
    step "mmcv==2.1.0 with compiled ops (first time: ~10 min)" \
        pip_install --no-build-isolation "$(grep mmcv requirements/mminstall.txt)"
fi
step "mmdet==3.3.0" pip_install "$(grep mmdet requirements/mminstall.txt)"
step "mmdet_yolor (editable)" pip_install --no-build-isolation --no-deps -e .
step "import check" "$PY" -c 'import mmdet_yolor, mmcv.ops'

stamp_value > "$STAMP"
printf '[%4ds] done: activate with `source %s/bin/activate`\n' $((SECONDS - START)) "$VENV"
