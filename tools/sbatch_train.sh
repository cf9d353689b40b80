#!/usr/bin/env bash
#SBATCH --requeue
#SBATCH --open-mode=append
# A requeue-safe batch training, submitted with sbatch as long trainings are:
#
#   sbatch -p PARTITION --job-name=NAME --ntasks=8 --ntasks-per-node=8 \
#       --gres=gpu:8 --cpus-per-task=5 --output=WORK_DIR/slurm-%j.out \
#       tools/sbatch_train.sh CONFIG WORK_DIR [train.py options...]
#
# Each start of the job, the first and every one after Slurm requeues it
# (preemption, `scontrol requeue`, a failed node), runs `train.py --resume`:
# it continues from the last checkpoint in WORK_DIR (from scratch when there
# is none), so a preempted training ends as an uninterrupted one would. Save
# checkpoints as often as a preemption may cost (default_hooks.checkpoint).
# TEST_AFTER_TRAINING=1 then tests the last checkpoint with tools/test.py
# (the config as trained, dumped in WORK_DIR; results in WORK_DIR/test).
#
# sbatch runs a copy of this script, so the tools are found from
# MMDET_YOLOR_ROOT, else the directory sbatch was called from (submit from
# the repository root). PYTHON picks the interpreter, SRUN_ARGS adds srun
# options; MASTER_PORT defaults to one derived from the job id, so jobs
# sharing a node do not collide.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: sbatch [options] $0 CONFIG WORK_DIR [train.py options...]" >&2
    exit 2
fi
CONFIG=$1
WORK_DIR=$2
shift 2
ROOT=${MMDET_YOLOR_ROOT:-${SLURM_SUBMIT_DIR:-$(pwd)}}
PYTHON=${PYTHON:-python}
export MASTER_PORT=${MASTER_PORT:-$((20000 + ${SLURM_JOB_ID:-0} % 20000))}
export PYTHONPATH="$ROOT":${PYTHONPATH:-}
if [ ! -f "$ROOT/tools/train.py" ]; then
    echo "sbatch_train: $ROOT/tools/train.py is missing; submit from the repository root or set MMDET_YOLOR_ROOT" >&2
    exit 2
fi

echo "sbatch_train: job ${SLURM_JOB_ID:-?} start $((${SLURM_RESTART_COUNT:-0} + 1)) on ${SLURM_JOB_NODELIST:-?}"
# shellcheck disable=SC2086
srun --kill-on-bad-exit=1 ${SRUN_ARGS:-} "$PYTHON" -u "$ROOT/tools/train.py" \
    "$CONFIG" --work-dir="$WORK_DIR" --launcher=slurm --resume "$@"

if [ "${TEST_AFTER_TRAINING:-0}" = 1 ]; then
    CHECKPOINT=$(cat "$WORK_DIR/last_checkpoint")
    TRAINED_CONFIG="$WORK_DIR/$(basename "$CONFIG")"
    # shellcheck disable=SC2086
    srun --kill-on-bad-exit=1 ${SRUN_ARGS:-} "$PYTHON" -u "$ROOT/tools/test.py" \
        "$TRAINED_CONFIG" "$CHECKPOINT" --work-dir="$WORK_DIR/test" --launcher=slurm
fi
echo "sbatch_train: job ${SLURM_JOB_ID:-?} done"
