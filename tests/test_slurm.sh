#!/usr/bin/env bash
# test_slurm.sh: nmperm batch on a real one-node Slurm cluster: starts munged, slurmctld and slurmd
# on localhost from a generated slurm.conf and munge key in a temporary folder, submits the
# shipped array script (docs/batch_array.sbatch) as a 4-task array over a small batch, merges the
# shards and checks the merged summary equals a run on one machine; then stops the daemons.
#
# usage: tests/test_slurm.sh path/to/nmperm [source root]
# Exits 77 (skipped) with the reason when not root or when slurm-wlm / munge are missing (Debian:
# apt-get install -y slurm-wlm munge), or when the cluster does not come up.
set -u

NMPERM=${1:?usage: test_slurm.sh path/to/nmperm [source root]}
SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac

skip() { echo "skip: $1"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to start munged, slurmctld and slurmd"
for p in munged slurmctld slurmd sbatch sinfo squeue; do
    command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] ||
        skip "$p not found (apt-get install -y slurm-wlm munge)"
done
PATH=$PATH:/usr/sbin

T=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-slurm.XXXXXX")
chmod 755 "$T"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 1

passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }

# ---------------------------------------------------------------- munge
mkdir -p munge state spool
chmod 700 munge
dd if=/dev/urandom of=munge/munge.key bs=1024 count=1 status=none
chmod 400 munge/munge.key
munged --foreground --force --socket="$T/munge/munge.socket" --key-file="$T/munge/munge.key" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" \
    --seed-file="$T/munge/munged.seed" 2>munge.err &
PIDS+=($!)
for _ in $(seq 1 50); do [ -S munge/munge.socket ] && break; sleep 0.1; done
[ -S munge/munge.socket ] || skip "munged did not start: $(cat munge.err munge/munged.log 2>/dev/null | tail -3)"

# ---------------------------------------------------------------- slurm
host=$(hostname -s)
node=$(slurmd -C 2>/dev/null | head -n 1)
[ -n "$node" ] || skip "slurmd -C printed no node line"
cpus=$(echo "$node" | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p')
port=$((20000 + RANDOM % 20000))
cat >slurm.conf <<EOF
ClusterName=nmptest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
slurmctld -D -f "$T/slurm.conf" >ctld.out 2>&1 &
PIDS+=($!)
slurmd -D -f "$T/slurm.conf" >slurmd.out 2>&1 &
PIDS+=($!)
state=
for _ in $(seq 1 100); do
    state=$(sinfo -h -o %T 2>/dev/null | head -n 1)
    [ "$state" = idle ] && break
    sleep 0.2
done
[ "$state" = idle ] ||
    skip "the one-node cluster did not come up (node state '$state'): $(tail -n 3 slurmctld.log slurmd.log 2>/dev/null | tr '\n' ' ')"
ok "cluster up: munged, slurmctld, slurmd on $host ($cpus CPUs)"

# ---------------------------------------------------------------- a batch as a 4-task array
mkdir -p in
k=0
for shape in 32x16 64x32 64x64 128x64 96x96 128x128 64x256 128x32; do
    k=$((k + 1))
    "$NMPERM" gen -o "in/layer$k.npy" --rows "${shape%x*}" --cols "${shape#*x}" --seed "$k" || exit 1
done
cp -r "$SRC/instances/tiny_llama" in/
OPTS=(--solvers auto,swap --param auto.effort=0.05 --threads 1)
"$NMPERM" batch in -o single "${OPTS[@]}" --jobs 1 --quiet || bad "single-machine run" "exit $?"

NMPERM=$NMPERM sbatch --array=0-3 --cpus-per-task=1 --wait -o "$T/task-%a.out" \
    "$SRC/docs/batch_array.sbatch" "$T/array" "$T/in" "${OPTS[@]}" >sbatch.out 2>&1
rc=$?
if [ "$rc" -eq 0 ] && [ -s array/shard-0/journal.jsonl ] && [ -s array/shard-3/journal.jsonl ]; then
    ok "sbatch --array=0-3 --wait: 4 tasks ran docs/batch_array.sbatch"
else
    bad "sbatch" "exit $rc: $(cat sbatch.out task-*.out 2>/dev/null | tail -5)"
fi
shards=""
for i in 0 1 2 3; do
    shards="$shards $(sed -n 's/.*"shard":\[\([0-9]*\),\([0-9]*\)\].*/\1\/\2/p' "array/shard-$i/journal.jsonl" | head -1)"
done
[ "$shards" = " 0/4 1/4 2/4 3/4" ] && ok "each task took its shard from SLURM_ARRAY_TASK_ID/COUNT" ||
    bad "shards" "$shards"
"$NMPERM" merge array/shard-0 array/shard-1 array/shard-2 array/shard-3 -o merged --quiet 2>merge.err ||
    bad "merge" "$(cat merge.err)"
"$NMPERM" summary single --no-times >a.txt
"$NMPERM" summary merged --no-times >b.txt
if cmp -s a.txt b.txt && diff -r single/perms merged/perms >/dev/null &&
    cmp -s single/plots/gain_per_layer.svg merged/plots/gain_per_layer.svg; then
    ok "merged summary, permutations and gain plot == the single-machine run"
else
    bad "merged != single" "$(diff a.txt b.txt | head -4)"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
