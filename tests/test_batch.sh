#!/usr/bin/env bash
# test_batch.sh: nmperm batch / summary / merge end to end: a run over matrices, a checkpoint and
# a bad input; resume after kill -9 at random points (byte-identical results); a torn journal
# line; option mismatches refused; shards merged == one run; missing, repeated and unfinished
# shards refused; a crashed worker reported, not fatal; GNU parallel (when installed)
#
# usage: tests/test_batch.sh path/to/nmperm [source root]
# Prints one line per check and ends with "N passed, M failed"; exits nonzero on any failure.
set -u

NMPERM=${1:?usage: test_batch.sh path/to/nmperm [source root]}
SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-batch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }

# the options of every run that is compared (fixed work: no time limits)
OPTS=(--solvers auto,swap --param auto.effort=0.05 --jobs 2 --threads 1 --quiet)

# same_results A B: the same permutations, the same table without times, the same gain plot and
# the same summary.csv but for its three time columns
same_results() {
    diff -r "$1/perms" "$2/perms" >/dev/null || { echo "perms differ"; return 1; }
    "$NMPERM" summary "$1" --no-times >"$TMP/a.txt" && "$NMPERM" summary "$2" --no-times >"$TMP/b.txt" ||
        { echo "summary failed"; return 1; }
    cmp -s "$TMP/a.txt" "$TMP/b.txt" || { echo "tables differ: $(diff "$TMP/a.txt" "$TMP/b.txt" | head -4)"; return 1; }
    cmp -s "$1/plots/gain_per_layer.svg" "$2/plots/gain_per_layer.svg" || { echo "gain plots differ"; return 1; }
    sed 's/,[^,]*,[^,]*,[^,]*$//' "$1/summary.csv" >"$TMP/a.csv"
    sed 's/,[^,]*,[^,]*,[^,]*$//' "$2/summary.csv" >"$TMP/b.csv"
    cmp -s "$TMP/a.csv" "$TMP/b.csv" || { echo "summary.csv differs"; return 1; }
}

# ---------------------------------------------------------------- inputs
mkdir -p in/sub
k=0
for shape in 32x16 64x32 64x64 128x64 96x96 128x128 256x128 64x256 128x32 32x192; do
    k=$((k + 1))
    "$NMPERM" gen -o "in/m$k.npy" --rows "${shape%x*}" --cols "${shape#*x}" --seed "$k" || exit 1
done
mv in/m9.npy in/sub/layer10.npy
mv in/m10.npy in/sub/layer2.npy
echo "not a matrix" >in/sub/bad.npy
cp -r "$SRC/instances/tiny_llama" in/
printf '# a manifest\nin/m1.npy\n\nin/sub\n' >manifest.txt

# ---------------------------------------------------------------- a run
"$NMPERM" batch in -o ref "${OPTS[@]}" 2>ref.err
rc=$?
jobs=$(($(wc -l <ref/journal.jsonl) - 1))
if [ "$rc" -eq 1 ] && [ "$jobs" -eq 40 ] && [ -s ref/summary.csv ] && [ -s ref/summary.json ] &&
    [ -s ref/summary.md ] && [ -s ref/plots/gain_per_layer.svg ] && [ -s ref/plots/solvers.svg ] &&
    [ -s ref/plots/time_vs_size.svg ] && [ "$(find ref/perms -name '*.npy' | wc -l)" -eq 38 ]; then
    ok "run: 40 jobs journaled, 38 permutations, summary files and plots (exit 1: one bad input)"
else
    bad "run" "rc $rc, $jobs jobs: $(cat ref.err)"
fi
if grep -q 'sub/bad.npy@auto: sub/bad.npy: not a .npy file' ref.err 2>/dev/null ||
    "$NMPERM" summary ref | grep -q '^#   sub/bad.npy@auto: sub/bad.npy: not a .npy file'; then
    ok "bad input: reported with its reason, the others ran"
else
    bad "bad input" "$("$NMPERM" summary ref | tail -5)"
fi
"$NMPERM" summary ref >table.txt
if grep -q '^sub/layer2.npy .*auto' table.txt && grep -q 'tiny_llama/model.safetensors:model.layers.1.mlp' table.txt &&
    [ "$(grep -n 'sub/layer2.npy' table.txt | head -1 | cut -d: -f1)" -lt "$(grep -n 'sub/layer10.npy' table.txt | head -1 | cut -d: -f1)" ] &&
    grep -q '^# total auto: 20 jobs, 19 ok, 1 failed' table.txt; then
    ok "summary: natural order (layer2 before layer10), checkpoint spaces, totals"
else
    bad "summary" "$(head -3 table.txt)"
fi
for f in ref/plots/*.svg; do
    if ! grep -q '</svg>' "$f" || { command -v xmllint >/dev/null && ! xmllint --noout "$f" 2>/dev/null; }; then
        bad "svg $f" "not a complete SVG document"
    fi
done
ok "plots: complete SVG documents"

# the ids do not depend on where the inputs are: a manifest gives the same jobs for its files
"$NMPERM" batch manifest.txt -o man "${OPTS[@]}" 2>/dev/null
if [ "$(grep -c '"state"' man/journal.jsonl)" -eq 8 ] && grep -q '"id":"m1.npy@auto"' man/journal.jsonl; then
    ok "manifest: its lines (a file, a folder) listed, ids relative to the common root"
else
    bad "manifest" "$(head -c 300 man/journal.jsonl)"
fi

# ---------------------------------------------------------------- kill -9 and resume
cp -r ref ref_copy
kills=0
records() { local n; n=$(grep -c '"state"' out/journal.jsonl 2>/dev/null); echo "${n:-0}"; }
for attempt in $(seq 1 20); do
    resume=()
    [ -e out/journal.jsonl ] && resume=(--resume)
    "$NMPERM" batch in -o out "${OPTS[@]}" "${resume[@]}" 2>/dev/null &
    pid=$!
    if [ "$kills" -lt 5 ]; then
        # kill after 1..6 more finished jobs, then 0..29 ms more: mid-job, mid-write, anywhere
        target=$(($(records) + 1 + RANDOM % 6))
        while kill -0 "$pid" 2>/dev/null && [ "$(records)" -lt "$target" ]; do sleep 0.01; done
        sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
        kill -9 "$pid" 2>/dev/null
    fi
    wait "$pid"
    rc=$?
    [ "$rc" -eq 137 ] && kills=$((kills + 1))
    [ "$rc" -ne 137 ] && [ "$kills" -ge 5 ] && break
done
# workers of a killed batch get SIGKILL from the kernel (PR_SET_PDEATHSIG), and a killed process
# can take a moment to go (a system call in progress completes first): a clean-clone CI run with
# another 2-thread job on the machine counted one worker still there 0.3 s after the batch ended.
# Wait up to 5 s; a worker that really outlives its batch still fails this.
count_workers() {
    local n
    n=$(ps -eo args | grep -c -- "--run-job.*$TMP/out" | tr -d ' ')
    echo $((n - $(ps -eo args | grep -- "--run-job.*$TMP/out" | grep -c grep)))
}
for _ in $(seq 1 50); do
    orphans=$(count_workers)
    [ "$orphans" -le 0 ] && break
    sleep 0.1
done
msg=$(same_results ref out)
if [ "$kills" -ge 5 ] && [ "$rc" -eq 1 ] && [ -z "$msg" ]; then
    ok "kill -9 $kills times at random points, resumed: same permutations and summary, byte for byte"
else
    bad "kill and resume" "$kills kills, rc $rc: $msg"
fi
[ "$orphans" -le 0 ] && ok "kill -9: no worker outlives the batch" || bad "orphans" "$orphans workers left"
if [ -z "$(find out -name '*nmperm-tmp*')" ]; then ok "resume: no temporaries left"; else bad "temporaries" "$(find out -name '*nmperm-tmp*')"; fi

# resuming a finished run does nothing but the summary, and removes temporaries a killed worker
# left (planted: one whose pid is this shell's, alive, and one deep in a checkpoint's folder)
before=$(wc -l <out/journal.jsonl)
planted=(out/perms/m1.npy.auto.npy.nmperm-tmp.$$.abcdef
         out/perms/tiny_llama/model.safetensors/x.swap.npy.nmperm-tmp.1.Q9zz0a)
for f in "${planted[@]}"; do echo partial >"$f"; done
"$NMPERM" batch in -o out "${OPTS[@]}" --resume 2>/dev/null
after=$(wc -l <out/journal.jsonl)
[ "$before" -eq "$after" ] && ok "resume of a finished run: no job redone" || bad "resume finished" "$before -> $after lines"
if [ -z "$(find out -name '*nmperm-tmp*')" ] && [ -s out/perms/m1.npy.auto.npy ]; then
    ok "resume: temporaries left by killed workers removed (the run owns OUTDIR under its lock)"
else
    bad "stale temporaries" "$(find out -name '*nmperm-tmp*')"
fi

# ---------------------------------------------------------------- torn journal line
cp -r ref torn
last=$(tail -n 1 torn/journal.jsonl)
head -n -1 torn/journal.jsonl >torn/j && mv torn/j torn/journal.jsonl
printf '%s' "${last:0:40}" >>torn/journal.jsonl
"$NMPERM" batch in -o torn "${OPTS[@]}" --resume 2>torn.err
msg=$(same_results ref torn)
lines_ok=1
while IFS= read -r line; do
    case $line in '{'*'}') ;; *) lines_ok=0 ;; esac
done <torn/journal.jsonl
if grep -q "torn last line" torn.err && [ -z "$msg" ] && [ "$lines_ok" -eq 1 ] &&
    [ "$(wc -l <torn/journal.jsonl)" -eq "$(wc -l <ref/journal.jsonl)" ]; then
    ok "torn last journal line: noticed, cut off, its job redone, same results"
else
    bad "torn line" "$msg $(cat torn.err)"
fi
cp -r ref midbad
sed -i '3s/.*/{"id": broken/' midbad/journal.jsonl
"$NMPERM" batch in -o midbad "${OPTS[@]}" --resume 2>midbad.err
if [ $? -eq 1 ] && grep -q 'line 3: not a JSON object' midbad.err; then
    ok "a bad line before the last: refused with its line number"
else
    bad "bad middle line" "$(cat midbad.err)"
fi

# ---------------------------------------------------------------- option mismatch
"$NMPERM" batch in -o ref_copy "${OPTS[@]}" --resume --seed 1 2>mm.err
rc=$?
if [ "$rc" -eq 1 ] && grep -q -- '--seed: 1 here, 0 in' mm.err; then
    ok "other options refused, the difference named  [$(cat mm.err)]"
else
    bad "option mismatch" "rc $rc: $(cat mm.err)"
fi
"$NMPERM" batch in -o ref_copy "${OPTS[@]}" 2>nr.err
if [ $? -eq 1 ] && grep -q -- 'continue it with --resume' nr.err; then
    ok "a finished OUTDIR without --resume: refused"
else
    bad "no resume" "$(cat nr.err)"
fi
"$NMPERM" batch in/m1.npy -o ref_copy --solvers swap --quiet --force 2>/dev/null
if [ $? -eq 0 ] && [ "$(grep -c '"state"' ref_copy/journal.jsonl)" -eq 1 ]; then
    ok "--force: starts over"
else
    bad "force" "$(head -c 200 ref_copy/journal.jsonl)"
fi
mkdir -p full && echo x >full/keep.txt
"$NMPERM" batch in/m1.npy -o full --quiet 2>full.err
[ $? -eq 1 ] && grep -q 'holds no batch journal' full.err && [ ! -e full/journal.jsonl ] &&
    ok "a non-empty folder without a journal: refused" || bad "non-empty" "$(cat full.err)"

# ---------------------------------------------------------------- usage errors
expect_usage() { # NAME NEEDLE ARGS...
    local name=$1 needle=$2
    shift 2
    "$NMPERM" "$@" >/dev/null 2>u.err
    local rc=$?
    if [ "$rc" -eq 1 ] && grep -q -- "$needle" u.err && [ "$(wc -l <u.err)" -eq 1 ]; then ok "$name"; else bad "$name" "rc $rc: $(cat u.err)"; fi
}
expect_usage "--budget with --time-limit" "exclude each other" batch in -o u1 --budget 10 --time-limit 1
expect_usage "jobs x threads over the cores" "--oversubscribe" batch in -o u2 --jobs 4096 --threads 2
expect_usage "unknown solver" "unknown solver 'nope'" batch in -o u3 --solvers auto,nope
expect_usage "bad shard" "--shard '3/3'" batch in -o u4 --shard 3/3
expect_usage "no output" "missing -o OUTDIR" batch in
expect_usage "summary of no batch" "not a batch output folder" summary in

# ---------------------------------------------------------------- shards and merge
for i in 0 1 2; do
    "$NMPERM" batch in -o "s$i" "${OPTS[@]}" --shard "$i/3" 2>/dev/null
done
"$NMPERM" merge s0 s1 s2 -o merged --quiet 2>merge.err
n0=$(grep -c '"state"' s0/journal.jsonl)
n1=$(grep -c '"state"' s1/journal.jsonl)
n2=$(grep -c '"state"' s2/journal.jsonl)
msg=$(same_results ref merged)
if [ $? -eq 0 ] && [ -z "$msg" ] && [ $((n0 + n1 + n2)) -eq 40 ] && [ "$n0" -gt 0 ] && [ "$n1" -gt 0 ] && [ "$n2" -gt 0 ]; then
    ok "3 shards ($n0 + $n1 + $n2 jobs) merged == one run"
else
    bad "shard + merge" "$msg $(cat merge.err)"
fi
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$NMPERM" batch in -o senv "${OPTS[@]}" 2>/dev/null
if [ "$(head -n 1 senv/journal.jsonl | sed 's/"root":"[^"]*"//')" = "$(head -n 1 s1/journal.jsonl | sed 's/"root":"[^"]*"//')" ]; then
    ok "shard from SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT == --shard 1/3"
else
    bad "slurm env shard"
fi
expect_usage "merge: missing shard" "shard 2/3 is missing" merge s0 s1 -o m1
expect_usage "merge: repeated shard" "shard 1/3 given twice" merge s0 s1 s1 s2 -o m2
"$NMPERM" batch in -o sseed "${OPTS[@]}" --shard 2/3 --seed 7 2>/dev/null
expect_usage "merge: other options" "--seed: 7 here, 0 in s0" merge s0 s1 sseed -o m3
cp -r s2 sopen && head -n -1 s2/journal.jsonl >sopen/journal.jsonl
expect_usage "merge: unfinished shard" "jobs unfinished" merge s0 s1 sopen -o m4
mkdir -p m5 && echo x >m5/x
expect_usage "merge: non-empty target" "is not empty" merge s0 s1 s2 -o m5

if command -v parallel >/dev/null; then
    parallel -j 3 "$NMPERM" batch in -o "par/{}" "${OPTS[@]}" --shard '{}/3' ::: 0 1 2 2>/dev/null
    "$NMPERM" merge par/0 par/1 par/2 -o par_merged --quiet 2>/dev/null
    msg=$(same_results ref par_merged)
    [ -z "$msg" ] && ok "GNU parallel: 3 shards merged == one run" || bad "GNU parallel" "$msg"
else
    echo "skip  GNU parallel is not installed"
fi

# ---------------------------------------------------------------- a crashing worker
"$NMPERM" gen -o crash/big.npy --rows 512 --cols 512 --seed 1 2>/dev/null ||
    { mkdir -p crash && "$NMPERM" gen -o crash/big.npy --rows 512 --cols 512 --seed 1; }
"$NMPERM" gen -o crash/small.npy --rows 32 --cols 32 --seed 2
"$NMPERM" batch crash -o crashed --solvers auto --param auto.effort=20 --jobs 2 --quiet 2>crash.err &
pid=$!
for _ in $(seq 1 100); do
    wpid=$(ps -eo pid,args | grep -- "--run-job.*crash/big.npy" | grep -v grep | awk '{print $1}' | head -1)
    [ -n "$wpid" ] && break
    sleep 0.05
done
"$NMPERM" batch crash -o crashed --solvers auto --param auto.effort=20 --jobs 2 --quiet --resume 2>twice.err
if [ $? -eq 1 ] && grep -q 'in use by another run' twice.err; then
    ok "a second run on a journal in use: refused"
else
    bad "second run" "$(cat twice.err)"
fi
[ -n "$wpid" ] && sleep 0.2 && kill -SEGV "$wpid"
wait "$pid"
rc=$?
if [ "$rc" -eq 1 ] && "$NMPERM" summary crashed | grep -q 'big.npy@auto: worker crashed: signal 11' &&
    grep -q '"id":"small.npy@auto","state":"ok"' crashed/journal.jsonl; then
    ok "a crashed worker: its job failed with the signal, the batch went on"
else
    bad "crash" "rc $rc: $(cat crash.err) $("$NMPERM" summary crashed | tail -3)"
fi

# ---------------------------------------------------------------- checkpoints, budgets
"$NMPERM" batch in/tiny_llama -o ck --solvers swap --write-checkpoints --quiet 2>ck.err
"$NMPERM" permute in/tiny_llama/model.safetensors -o permuted.safetensors --solver swap --quiet
if [ $? -eq 0 ] && cmp -s ck/checkpoints/model.swap.safetensors permuted.safetensors &&
    "$NMPERM" summary ck | grep -q 'model.safetensors (write) .*written'; then
    ok "--write-checkpoints: written after its spaces, == nmperm permute with the same solver"
else
    bad "write checkpoints" "$(cat ck.err)"
fi
"$NMPERM" batch in -o bud --solvers auto --budget 4 --jobs 2 --quiet 2>/dev/null
if grep -q 'note: results depend on wall time (--budget 4 s' <("$NMPERM" summary bud) &&
    awk -F'"share":' 'NR > 1 && NF > 1 { split($2, a, /[,}]/); s += a[1] } END { exit !(s > 0 && s <= 4 * 2 * 0.9 + 1e-4) }' bud/journal.jsonl; then
    ok "--budget: shares add up within budget x jobs; the summary says results depend on time"
else
    bad "budget" "$("$NMPERM" summary bud | tail -2)"
fi

if "$NMPERM" solvers | grep -q '^colgen'; then
    "$NMPERM" batch in/m2.npy in/m3.npy -o lp --solvers swap --bound-time 20 --quiet 2>/dev/null
    if "$NMPERM" summary lp | grep -q '^m2.npy .* [0-9.]*%  *[0-9.]*  feasible' &&
        "$NMPERM" summary lp | grep -q 'note: LP bounds depend on wall time' &&
        [ "$(grep -c '"lp_bound":[0-9]' lp/journal.jsonl)" -eq 2 ]; then
        ok "--bound-time: LP bounds per job, gaps in the table"
    else
        bad "bound time" "$("$NMPERM" summary lp | head -3)"
    fi
else
    echo "skip  --bound-time: no colgen (GLPK) in this build"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
