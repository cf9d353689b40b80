#!/usr/bin/env bash
# A single-node Slurm on this machine: the tests of the cluster path start it
# (tests/test_tools/test_slurm.py), and it lets a user try tools/slurm_*.sh
# without a cluster.
#
#   tools/misc/local_slurm.sh start [--gpus N] [--cpus N]
#   tools/misc/local_slurm.sh stop
#   tools/misc/local_slurm.sh status
#   eval "$(tools/misc/local_slurm.sh env)"    # point srun/sbatch at it
#
# start installs Debian's Slurm and munge when missing (apt-get, as root),
# writes the configuration under LOCAL_SLURM_DIR (default
# /tmp/mmdet_yolor_slurm; nothing under /etc/slurm is touched: clients find
# it through SLURM_CONF), starts munged, slurmctld and slurmd without
# systemd and waits until the node is idle. It is idempotent: a local Slurm
# running with the same options is left as it is, one with other options is
# restarted with these.
#   --gpus N  the node advertises N "gpu" GRES backed by plain files, so
#             the stock `--gres=gpu:N` of tools/slurm_train.sh schedules;
#             the tasks still run on the CPU (default 0: no GRES).
#   --cpus N  CPUs the node offers (default: nproc); more than the machine
#             has lets several small jobs run side by side.
# One partition, "debug" (the default partition). Exit status 3 means Slurm
# cannot be installed here (no root or no apt-get), with the reason.
# stop ends the daemons that start started, by their pid files.
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/tmp/mmdet_yolor_slurm}
CONF=$DIR/slurm.conf
PARTITION=debug
export SLURM_CONF=$CONF

say() { echo "local_slurm: $*"; }
die() { echo "local_slurm: $*" >&2; exit "${2:-1}"; }

running() {
    [ -f "$CONF" ] && command -v scontrol >/dev/null &&
        scontrol ping 2>/dev/null | grep -q 'is UP' &&
        [ -n "$(sinfo -h -o %T 2>/dev/null)" ]
}

install_slurm() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v srun >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || die "Slurm is not installed and installing it needs root (apt-get install slurmctld slurmd slurm-client munge)" 3
    command -v apt-get >/dev/null || die "Slurm is not installed and there is no apt-get to install it (install slurmctld, slurmd, slurm-client and munge)" 3
    say "installing Slurm and munge (apt-get)"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            slurmctld slurmd slurm-client munge >"$DIR/apt.log" 2>&1; then
        # a fresh machine may not have the package lists yet
        apt-get update -q >>"$DIR/apt.log" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            slurmctld slurmd slurm-client munge >>"$DIR/apt.log" 2>&1 ||
            die "apt-get could not install Slurm (see $DIR/apt.log)" 3
    fi
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    munge_works && return
    [ -f /etc/munge/munge.key ] || die "munge has no key (/etc/munge/munge.key); reinstall munge or run mungekey"
    install -d -o munge -g munge -m 0755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/started-munged"
    for _ in $(seq 1 50); do
        munge_works && return
        sleep 0.1
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

# write_config GPUS CPUS FILE: slurm.conf (and gres.conf beside CONF)
write_config() {
    local gpus=$1 cpus=$2 file=$3 node memory gres_line=""
    node=$(hostname -s)
    memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mkdir -p "$DIR/state" "$DIR/spool"
    if [ "$gpus" -gt 0 ]; then
        gres_line=" Gres=gpu:$gpus"
        : >"$DIR/gres.conf"
        for ((i = 0; i < gpus; i++)); do
            touch "$DIR/fake-gpu$i"
            echo "Name=gpu File=$DIR/fake-gpu$i" >>"$DIR/gres.conf"
        done
    else
        rm -f "$DIR/gres.conf"
    fi
    cat >"$file" <<EOF
# Written by tools/misc/local_slurm.sh: a single-node Slurm for tests.
ClusterName=local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# no cgroups, no systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# the configured CPUs, not the machine's count (--cpus)
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
# refuse a request the node cannot hold instead of queueing it forever
EnforcePartLimits=ALL
# Slurm holds a requeued job until the old job credentials expire (120 s
# by default): a requeued job here may start again after 10 s
AuthInfo=cred_expire=10
MinJobAge=300
$([ "$gpus" -gt 0 ] && echo GresTypes=gpu)
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory$gres_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_idle() {
    local state
    for _ in $(seq 1 60); do
        state=$(sinfo -h -o %T 2>/dev/null || true)
        case "$state" in
        idle* | mixed* | allocated*) return ;;
        esac
        sleep 0.5
    done
    die "the node did not become idle (sinfo: '${state:-nothing}'); see $DIR/slurmctld.log and $DIR/slurmd.log"
}

start() {
    local gpus=0 cpus
    cpus=$(nproc)
    while [ $# -gt 0 ]; do
        case "$1" in
        --gpus) gpus=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        *) die "unknown option $1 (start takes --gpus N and --cpus N)" ;;
        esac
    done
    mkdir -p "$DIR"
    install_slurm
    write_config "$gpus" "$cpus" "$CONF.new"
    if running && cmp -s "$CONF" "$CONF.new"; then
        rm -f "$CONF.new"
        say "already running (SLURM_CONF=$CONF)"
        return
    fi
    stop_daemons
    mv "$CONF.new" "$CONF"
    start_munge
    slurmctld -c -f "$CONF"
    slurmd -f "$CONF"
    wait_idle
    # a node left down by an earlier run
    scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
    say "running: partition $PARTITION, $cpus CPUs, $gpus fake GPUs (SLURM_CONF=$CONF)"
}

stop_pid_file() {
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if kill "$pid" 2>/dev/null; then
        # a stopped daemon lingers a moment (as a zombie): wait for it
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            [ "$(ps -o stat= -p "$pid" 2>/dev/null)" = Z ] && break
            sleep 0.1
        done
    fi
    rm -f "$file"
}

stop_daemons() {
    stop_pid_file "$DIR/slurmd.pid"
    stop_pid_file "$DIR/slurmctld.pid"
}

stop() {
    stop_daemons
    if [ -f "$DIR/started-munged" ]; then
        stop_pid_file /run/munge/munged.pid
        rm -f "$DIR/started-munged"
    fi
    say "stopped"
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) stop ;;
status)
    if running; then
        sinfo
    else
        say "not running"
        exit 1
    fi
    ;;
env) echo "export SLURM_CONF=$CONF" ;;
*) die "usage: $0 start [--gpus N] [--cpus N] | stop | status | env" 2 ;;
esac
