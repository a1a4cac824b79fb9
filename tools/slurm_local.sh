#!/usr/bin/env bash
# A single-node Slurm cluster on 127.0.0.1 for trying (and testing) the recipe's Slurm back end:
# munged with its own key, slurmctld and slurmd, every file under one state folder.
#   tools/slurm_local.sh start [state dir]   starts it; prints the SLURM_CONF line to export
#   tools/slurm_local.sh stop  [state dir]   cancels its jobs and stops its daemons
#   tools/slurm_local.sh install             apt-get install slurm-wlm munge (Debian, as root)
# The node gets this machine's CPUs and memory (slurmd -C); SLURM_LOCAL_PORT moves its ports
# (default 16817 and 16818) so that two clusters can run side by side. Nothing outside the state folder
# is written; /etc/munge and /etc/slurm are left as they are.
set -euo pipefail

action=${1:-}
state=$(realpath -m "${2:-$(dirname "$0")/slurm-local}")
conf=${state}/slurm.conf
port=${SLURM_LOCAL_PORT:-16817}  # slurmctld's port; slurmd takes the next one

die() { echo "$0: $*" >&2; exit 1; }

install_packages() {
    command -v sbatch > /dev/null && command -v munged > /dev/null && { echo "slurm and munge are installed"; return; }
    [ "$(id -u)" -eq 0 ] || die "installing needs root: sudo $0 install"
    command -v apt-get > /dev/null || die "no apt-get here: install Slurm (slurm-wlm) and munge with this system's package manager"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge || { apt-get update -q && apt-get install -y -q slurm-wlm munge; }
}

write_conf() {
    local node
    node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=... RealMemory=...
    cat > "${conf}.tmp" << EOF
# written by tools/slurm_local.sh: a one-node cluster on 127.0.0.1
ClusterName=asdlocal
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=${state}/munge.socket
CredType=cred/munge
SlurmctldPort=${port}
SlurmdPort=$((port + 1))
StateSaveLocation=${state}/ctld
SlurmdSpoolDir=${state}/spool
SlurmctldPidFile=${state}/slurmctld.pid
SlurmdPidFile=${state}/slurmd.pid
SlurmctldLogFile=${state}/slurmctld.log
SlurmdLogFile=${state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=60
${node% UpTime=*} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "${conf}.tmp" "${conf}"
}

start() {
    command -v slurmctld > /dev/null || die "Slurm is not installed: run '$0 install' (Debian, as root)"
    command -v munged > /dev/null || die "munge is not installed: run '$0 install' (Debian, as root)"
    if [ -f "${state}/slurmctld.pid" ] && kill -0 "$(cat "${state}/slurmctld.pid")" 2> /dev/null; then
        die "a cluster of ${state} runs already: '$0 stop ${state}' first"
    fi
    mkdir -p "${state}/ctld" "${state}/spool"
    if [ ! -f "${state}/munge.key" ]; then
        dd if=/dev/urandom of="${state}/munge.key.tmp" bs=1024 count=1 status=none
        chmod 600 "${state}/munge.key.tmp"
        mv "${state}/munge.key.tmp" "${state}/munge.key"
    fi
    munged --force --key-file "${state}/munge.key" --socket "${state}/munge.socket" \
        --pid-file "${state}/munged.pid" --log-file "${state}/munged.log" --seed-file "${state}/munged.seed"
    write_conf
    slurmctld -f "${conf}"
    slurmd -f "${conf}"
    export SLURM_CONF=${conf}
    local tries
    for tries in $(seq 60); do
        sinfo -h -o '%t' 2> /dev/null | grep -qE '^(idle|mix|alloc)' && break
        [ "${tries}" -eq 60 ] && { stop; die "the node did not come up in 30 s: see ${state}/slurmctld.log and slurmd.log"; }
        sleep 0.5
    done
    echo "export SLURM_CONF=${conf}"
}

stop() {
    export SLURM_CONF=${conf}
    [ -f "${conf}" ] && scancel --full --quiet --user "$(id -un)" 2> /dev/null || true
    local daemon pid
    for daemon in slurmd slurmctld munged; do
        [ -f "${state}/${daemon}.pid" ] || continue
        pid=$(cat "${state}/${daemon}.pid")
        if kill "${pid}" 2> /dev/null; then
            for _ in $(seq 50); do kill -0 "${pid}" 2> /dev/null || break; sleep 0.1; done
        fi
        rm -f "${state}/${daemon}.pid"
    done
}

case "${action}" in
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 install | start [state dir] | stop [state dir]" ;;
esac
