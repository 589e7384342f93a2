#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests marked `slurm` (pytest -m slurm) and
# for trying hydra/launcher=slurm by hand. Needs root; installs Debian's slurm-wlm and munge
# when they are missing; sizes the node from this machine's CPUs and memory.
#   scripts/slurm_cluster.sh start     # idempotent: a cluster that answers is left running
#   scripts/slurm_cluster.sh status    # exit 0 when sinfo answers
#   scripts/slurm_cluster.sh stop
# Tested with SLURM 22.05 (Debian 12): ProctrackType=proctrack/linuxproc, TaskPlugin=task/none,
# JobAcctGatherType=jobacct_gather/none, SelectType=select/cons_tres (CR_CPU_Memory), one
# node, partition `debug`.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
NODE=$(hostname -s)

answers() { timeout 10 sinfo -h -o %T >/dev/null 2>&1; }

install() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null && return
    [ "$(id -u)" = 0 ] || { echo "slurm_cluster: slurm-wlm is not installed and this is not root" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
}

configure() {
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
    local mem_mb
    # what the node offers jobs: its memory less 1 GiB for the system
    mem_mb=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
    cat > "$CONF" <<CONF
ClusterName=gan
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
ReturnToService=2
JobRequeue=1
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# the time a job may overrun its limit before it is killed: none
OverTimeLimit=0
KillWait=30
NodeName=$NODE CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
}

start() {
    if answers; then echo "slurm_cluster: running ($(sinfo -h -o '%P %D %T %c CPUs %m MB'))"; return; fi
    install
    configure
    pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
    pgrep -x slurmctld >/dev/null || slurmctld
    pgrep -x slurmd >/dev/null || slurmd
    for _ in $(seq 30); do
        if answers && [ "$(sinfo -h -o %T | head -1)" = idle ]; then
            echo "slurm_cluster: started ($(sinfo -h -o '%P %D %T %c CPUs %m MB'))"; return
        fi
        sleep 1
    done
    scontrol update nodename="$NODE" state=resume 2>/dev/null || true
    answers || { echo "slurm_cluster: slurmctld does not answer; see /var/log/slurm/" >&2; exit 1; }
    echo "slurm_cluster: started ($(sinfo -h -o '%P %D %T %c CPUs %m MB'))"
}

stop() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
    echo "slurm_cluster: stopped"
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) answers && sinfo ;;
    *) echo "usage: $0 start|status|stop" >&2; exit 2 ;;
esac
