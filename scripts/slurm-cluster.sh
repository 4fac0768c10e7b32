#!/usr/bin/env bash
# A real single-node Slurm cluster on loopback, for the sweep tests (Debian's slurm-wlm and munge).
#   scripts/slurm-cluster.sh start DIR   installs the packages if missing (root), starts munged,
#                                        slurmctld and slurmd with a private config in DIR, waits
#                                        until the node is idle, prints `export SLURM_CONF=...`
#   scripts/slurm-cluster.sh stop DIR    stops the daemons started by `start`
set -euo pipefail
action=${1:?start or stop}
dir=$(mkdir -p "${2:?state directory}" && cd "$2" && pwd)
conf=$dir/slurm.conf

stop() {
  for pid in "$dir"/slurmd.pid "$dir"/slurmctld.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
}

if [ "$action" = stop ]; then stop; exit 0; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm: installing slurm-wlm and munge" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >&2
fi

# munge: a key, a running daemon, and a credential that decodes
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chmod 400 /etc/munge/munge.key
  munged --force >&2 2>/dev/null || munged --force
  sleep 1
  munge -n | unmunge >/dev/null
fi

host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$dir/state" "$dir/spool"
cat > "$conf" <<CONF
ClusterName=l2l-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmctldPort=16817
SlurmdPort=16818
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf
stop
slurmctld -f "$conf"
slurmd -f "$conf"
for _ in $(seq 1 60); do
  if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
    echo "export SLURM_CONF=$conf"
    exit 0
  fi
  sleep 1
done
echo "slurm: the node did not become idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
