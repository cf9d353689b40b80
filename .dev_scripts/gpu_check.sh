#!/usr/bin/env bash
# The GPU check from a bare lent GPU machine (docs/gpu_check.md): install
# the carried wheels offline (.dev_scripts/gpu_check_prepare.py put them in
# $GPU_WHEELS), build mmcv 2.1.0 with its CPU ops only (mmdet imports them;
# the GPU is hidden from the build), install this package, then run
# .dev_scripts/gpu_check.py within what is left of $GPU_CHECK_BUDGET seconds
# from the start. mmcv's CUDA NMS and RoIAlign are built last, by
# gpu_check.py itself, for this GPU only.
#
#   bash .dev_scripts/gpu_check.sh [gpu_check.py options]
#
# Environment: PYTHON (python3), GPU_WHEELS (work_dirs/gpu_wheels), OUT (the
# report folder; the device tool sets it; else work_dirs/gpu_check),
# GPU_CHECK_BUDGET (seconds, default 540: the device tool's command limit is
# 600), DEVICE (cuda), MMCV_WHEEL (an mmcv wheel built before for this
# Python and torch: installed instead of building, for a rehearsal).
set -euo pipefail
cd "$(dirname "$0")/.."

START=$(date +%s)
PYTHON=${PYTHON:-python3}
WHEELS=$(realpath "${GPU_WHEELS:-work_dirs/gpu_wheels}")
OUT=${OUT:-work_dirs/gpu_check}
BUDGET=${GPU_CHECK_BUDGET:-540}
DEVICE=${DEVICE:-cuda}
MMCV_SRC=${MMCV_SRC:-/tmp/gpu_check_mmcv-2.1.0}
# --all: nproc alone honours OMP_NUM_THREADS
JOBS=$(nproc --all)
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"

log() { echo "[gpu_check.sh $(($(date +%s) - START)) s] $*" | tee -a "$LOG"; }
pip_offline() {
    "$PYTHON" -m pip install -q --disable-pip-version-check --no-index \
        --no-deps --no-cache-dir --find-links "$WHEELS" "$@"
}

if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    echo "error: no wheels in $WHEELS: run .dev_scripts/gpu_check_prepare.py" \
        "(make gpu-check-prepare) here and carry $WHEELS" >&2
    exit 1
fi
log "python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])'), $JOBS cores"
pip_offline --upgrade "$WHEELS"/*.whl 2>&1 | tee -a "$LOG"
log "wheels installed"

rm -rf "$MMCV_SRC" && mkdir -p "$MMCV_SRC"
tar xzf "$WHEELS"/mmcv-2.1.0.tar.gz -C "$MMCV_SRC" --strip-components 1
if [ -n "${MMCV_WHEEL:-}" ]; then
    pip_offline "$MMCV_WHEEL" 2>&1 | tee -a "$LOG"
    log "mmcv installed from $MMCV_WHEEL"
else
    # CPU ops only: mmcv builds CUDA ops when it sees a GPU
    (cd "$MMCV_SRC" && CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 MMCV_WITH_OPS=1 \
        MAX_JOBS=$JOBS pip_offline --no-build-isolation . 2>&1 | tail -n 5 |
        tee -a "$LOG")
    log "mmcv built (CPU ops)"
fi
pip_offline --no-build-isolation -e . 2>&1 | tee -a "$LOG"
"$PYTHON" -c 'import mmdet_yolor, mmcv.ops; print("mmdet_yolor", mmdet_yolor.__version__, "from", mmdet_yolor.__file__)' |
    tee -a "$LOG"
log "package installed"

LEFT=$((BUDGET - ($(date +%s) - START)))
log "gpu_check.py with $LEFT s left"
PYTHONUNBUFFERED=1 "$PYTHON" .dev_scripts/gpu_check.py --device "$DEVICE" \
    --out "$OUT" --budget "$LEFT" --mmcv-src "$MMCV_SRC" "$@" 2>&1 |
    tee -a "$LOG"
log "done"
