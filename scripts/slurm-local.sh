#!/usr/bin/env bash
# A single-node SLURM for the test suite and for trying `mousereg run --cluster slurm` on one
# machine (Debian 12; no systemd, no cgroups, no slurmdbd). Adapted from ../shared/hpc/slurm-local.sh.
#
# Usage (as root):  scripts/slurm-local.sh start | stop | status
#   start   installs slurmctld slurmd slurm-client munge (--no-install-recommends) when missing,
#           starts munged, slurmctld and slurmd with all state under $SLURM_LOCAL_DIR.
#           Exit status 3 when the packages cannot be installed (not root, no apt, no network):
#           the test suite then skips the SLURM test and prints why.
#   stop    cancels every job first (their processes are not children of slurmd), then stops
#           the daemons by their pid files.
# Environment: SLURM_LOCAL_DIR (default /tmp/mousereg-slurm), SLURM_LOCAL_CPUS (default nproc),
#              SLURM_LOCAL_MEM_MB (default: what `slurmd -C` reports, at most 20000).
set -euo pipefail
D=${SLURM_LOCAL_DIR:-/tmp/mousereg-slurm}
NODE=$(hostname -s)
CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}

wait_pid_gone() { for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.2; done; return 1; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  if [ "$(id -u)" != 0 ]; then echo "SLURM is not installed and this is not root" >&2; exit 3; fi
  if ! command -v apt-get >/dev/null; then echo "SLURM is not installed and apt-get is missing" >&2; exit 3; fi
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends slurmctld slurmd slurm-client munge; } >"${TMPDIR:-/tmp}/slurm-local-apt.log" 2>&1; then
    echo "apt-get could not install slurmctld slurmd slurm-client munge:" >&2
    tail -n 5 "${TMPDIR:-/tmp}/slurm-local-apt.log" >&2; exit 3
  fi
}

start() {
  install
  stop >/dev/null 2>&1 || true
  rm -rf "$D"; mkdir -p "$D"/ctld "$D"/spool "$D"/log
  local real mem
  real=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  mem=${SLURM_LOCAL_MEM_MB:-$(( ${real:-20000} < 20000 ? ${real:-20000} : 20000 ))}
  # ---- munge: its run folder, a 0400 key, running as the munge user ------------------------
  mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  cp /run/munge/munged.pid "$D/munged.pid"
  # ---- slurm.conf: no cgroups in a container (linuxproc, task/none), no accounting ---------
  mkdir -p /etc/slurm
  cat > /etc/slurm/slurm.conf <<CONF
ClusterName=mousereg
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  # ---- daemons (they fork and write their own pid files) -----------------------------------
  /usr/sbin/slurmctld -i
  /usr/sbin/slurmd -N "$NODE"
  local st=""
  for _ in $(seq 100); do
    st=$(sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    case "$st" in idle*|mix*|alloc*) echo "slurm up: $(sinfo -h)"; return 0;; esac
    sleep 0.2
  done
  echo "slurm did not come up (state='$st')" >&2; tail -n 30 "$D"/log/*.log >&2; return 1
}

stop() {
  if [ -s "$D/slurmctld.pid" ] && command -v scancel >/dev/null; then
    scancel --full --quiet 2>/dev/null || true
    for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
  fi
  for name in slurmd slurmctld munged; do
    f="$D/$name.pid"; [ -s "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      wait_pid_gone "$pid" || { echo "$name ($pid) still alive, SIGKILL" >&2; kill -KILL "$pid"; }
    fi
    rm -f "$f"
  done
  echo "slurm stopped"
}

status() {
  for name in munged slurmctld slurmd; do
    f="$D/$name.pid"; pid=$(cat "$f" 2>/dev/null || echo -)
    if [ "$pid" != - ] && kill -0 "$pid" 2>/dev/null; then echo "$name running ($pid)"; else echo "$name not running"; fi
  done
  sinfo 2>/dev/null || true
}

case "${1:-}" in
  start|stop|status) "$1" ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
