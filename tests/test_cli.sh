#!/usr/bin/env bash
# test_cli.sh: end-to-end tests of the nmperm command line: help, gen, score, solve, bad inputs
#
# usage: tests/test_cli.sh path/to/nmperm [source root]
# Prints one line per check and ends with "N passed, M failed"; exits nonzero on any failure.
# Needs bash, coreutils and awk (python3 is used to parse JSON when present). The helpers and the
# awk reference scorer (nm_ref) are in tests/cli_harness.sh.
set -u

NMPERM=${1:?usage: test_cli.sh path/to/nmperm [source root]}
SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
. "$SRC/tests/cli_harness.sh" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

# ------------------------------------------------------------------ the harness itself
# a condition after && is part of the check; a split condition is a failure
check "harness: a later condition counts" '! ( passed=0; failed=0; check x "true && false" >/dev/null; [ "$failed" -eq 0 ] )'
check "harness: more than one condition argument fails" '! ( passed=0; failed=0; check x true true >/dev/null; [ "$failed" -eq 0 ] )'

# ------------------------------------------------------------------ help and version
commands="score solve bound solvers gen compare plan permute apply gpu-eval gpu-bench"
run --help
check "nmperm --help" '[ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm"* ]]'
missing=
for cmd in $commands; do grep -q "^  $cmd " out.txt || missing="$missing $cmd"; done
check "nmperm --help lists every command (missing:${missing:- none})" '[ -z "$missing" ]'
run --version
check "nmperm --version" '[ "$rc" -eq 0 ] && [[ $out == "nmperm "[0-9]* ]]'
for cmd in $commands; do
    run "$cmd" --help
    check "nmperm $cmd --help" '[ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm $cmd"* ]]'
    run "$cmd" -h
    check "nmperm $cmd -h" '[ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm $cmd"* ]]'
    run "$cmd" --version
    check "nmperm $cmd --version" '[ "$rc" -eq 0 ] && [[ $out == "nmperm "[0-9]* ]]'
done
run
check "nmperm without a command exits 1 with the help" '[ "$rc" -eq 1 ] && [[ $err == *"usage: nmperm"* ]]'
expect_fail "unknown command" 1 "frobnicate" frobnicate
missing=
for cmd in $commands; do [[ $err == *" $cmd"[,\;]* ]] || missing="$missing $cmd"; done
check "unknown command lists every command (missing:${missing:- none})" '[ -z "$missing" ]'

# ------------------------------------------------------------------ solvers
run solvers
check "solvers lists swap and dp" '[ "$rc" -eq 0 ] && [[ $out == *swap* && $out == *dp* ]]'
check "solvers shows parameter ranges" '[[ $out == *"default"*"range ["* ]]'
"$NMPERM" solvers --json >solvers.json 2>/dev/null
check "solvers --json parses" 'is_json solvers.json'

# ------------------------------------------------------------------ gen
"$NMPERM" gen -o a1.npy --rows 32 --cols 16 --seed 7 &&
    "$NMPERM" gen -o a2.npy --rows 32 --cols 16 --seed 7 &&
    "$NMPERM" gen -o a3.npy --rows 32 --cols 16 --seed 8
gen_rc=$?
check "gen exits 0" '[ "$gen_rc" -eq 0 ]'
check "gen: same seed, identical bytes" 'cmp -s a1.npy a2.npy'
check "gen: other seed, other bytes" '! cmp -s a1.npy a3.npy'
check "gen: float32 header" "grep -q \"'descr': '<f4'\" a1.npy"
check "gen: 32 x 16 values" '[ "$(npy_values a1.npy f4 | wc -l)" -eq $((32 * 16)) ]'
"$NMPERM" gen -o u1.npy --rows 16 --cols 8 --dist uniform --seed 3 &&
    "$NMPERM" gen -o u2.npy --rows 16 --cols 8 --dist uniform --seed 3
check "gen uniform: same seed, identical bytes" 'cmp -s u1.npy u2.npy'
check "gen uniform differs from absnormal" '! cmp -s u1.npy a1.npy'
check "gen uniform: values in [0, 1)" '[ "$(npy_values u1.npy f4 | awk "\$1 < 0 || \$1 >= 1" | wc -l)" -eq 0 ]'
expect_fail "gen: missing --rows" 1 "gen" gen -o x.npy --cols 8
expect_fail "gen: bad --rows" 1 "abc" gen -o x.npy --rows abc --cols 8
expect_fail "gen: bad --dist" 1 "gauss" gen -o x.npy --rows 4 --cols 8 --dist gauss
expect_fail "gen: negative seed" 1 "-3" gen -o x.npy --rows 4 --cols 8 --seed -3
expect_fail "gen: unwritable output" 1 "$TMP/nodir/x.npy" gen -o "$TMP/nodir/x.npy" --rows 4 --cols 8
check "gen: no file after a failed write" '[ ! -e "$TMP/nodir" ]'

# ------------------------------------------------------------------ apex reference instance
# np.random.seed(1); np.random.rand(128, 64): apex's permutation README publishes unpruned
# magnitude 4083.169, "50% rows" bound 3042.332 and default 2:4 (identity) 2852.376
"$NMPERM" gen --numpy-legacy-rand --seed 1 --rows 128 --cols 64 -o ref.npy
gen_rc=$?
check "gen --numpy-legacy-rand exits 0" '[ "$gen_rc" -eq 0 ]'
"$NMPERM" gen --numpy-legacy-rand --seed 1 --rows 128 --cols 64 -o ref2.npy
check "gen --numpy-legacy-rand: deterministic" 'cmp -s ref.npy ref2.npy'
check "gen reproduces instances/apex_ref_128x64.npy" 'cmp -s ref.npy "$SRC/instances/apex_ref_128x64.npy"'
"$NMPERM" score ref.npy --json >ref.json 2>err.txt
score_rc=$?
check "score --json exits 0" '[ "$score_rc" -eq 0 ]'
check "score --json parses" 'is_json ref.json'
total=$(json_get total ref.json)
bound=$(json_get row_bound ref.json)
ident=$(json_get identity ref.json)
check "apex unpruned magnitude 4083.169 ($total)" 'close "$total" 4083.169 0.002'
check "apex 50% rows bound 3042.332 ($bound)" 'close "$bound" 3042.332 0.002'
check "apex default 2:4 (identity) 2852.376 ($ident)" 'close "$ident" 2852.376 0.002'
read -r ref_ident ref_rb _ _ < <(nm_ref ref.npy 128 64 2 4)
check "awk reference: identity $ref_ident, row bound $ref_rb" \
    'close "$ident" "$ref_ident" 1e-3 && close "$bound" "$ref_rb" 1e-3'
run score ref.npy
check "score text names total, identity, row bound, kept, efficacy" \
    '[[ $out == *total*4083.1688* && $out == *identity*2852.3772* && $out == *"row bound"*3042.3323* && $out == *kept* && $out == *efficacy* ]]'

# ------------------------------------------------------------------ solve
"$NMPERM" gen -o w16.npy --rows 64 --cols 16 --seed 5
run solve w16.npy --solver dp
check "solve dp exits 0" '[ "$rc" -eq 0 ]'
check "solve dp prints status optimal" '[[ $out == *"status"*optimal* ]]'
check "solve prints no progress line when stderr is not a terminal" '[ -z "$err" ]'
"$NMPERM" solve w16.npy --solver dp --json -o p16.npy >dp.json 2>err.txt
solve_rc=$?
check "solve --json exits 0" '[ "$solve_rc" -eq 0 ]'
check "solve --json parses" 'is_json dp.json'
check "solve --json has a permutation" "grep -q '\"perm\": \[[0-9]' dp.json"
kept=$(json_get kept dp.json)
ident=$(json_get identity dp.json)
check "solve dp: kept $kept >= identity $ident" 'le "$ident" "$kept" 0'
check "solve dp: status optimal in JSON" '[ "$(json_get status dp.json)" = optimal ]'
check "solve -o writes the permutation" '[ -s p16.npy ]'
read -r _ _ _ ref_kept < <(nm_ref w16.npy 64 16 2 4 p16.npy)
check "solve dp: kept $kept is the awk score of the written permutation ($ref_kept)" \
    'close "$kept" "$ref_kept" 1e-3'
"$NMPERM" score w16.npy --perm p16.npy --json >back.json 2>err.txt
score_rc=$?
check "score --perm reads it back" '[ "$score_rc" -eq 0 ]'
check "score --perm: same kept score ($(json_get kept back.json))" 'close "$(json_get kept back.json)" "$kept" 1e-6'
"$NMPERM" solve w16.npy --solver swap --json >swap.json 2>/dev/null
check "solve swap: kept <= dp optimum" 'le "$(json_get kept swap.json)" "$kept" 1e-6'
"$NMPERM" solve w16.npy --solver swap --start p16.npy --json >start.json 2>/dev/null
check "solve --start from the optimum keeps it" 'close "$(json_get kept start.json)" "$kept" 1e-6'
run solve w16.npy --solver random --seed 3 --param tries=5 --quiet -o q.npy
check "solve --quiet prints nothing and writes" '[ "$rc" -eq 0 ] && [ -z "$out$err" ] && [ -s q.npy ]'
"$NMPERM" solve w16.npy --solver random --seed 3 --param tries=20 -o r1.npy >/dev/null 2>&1
"$NMPERM" solve w16.npy --solver random --seed 3 --param tries=20 -o r2.npy >/dev/null 2>&1
check "solve: same seed, same permutation" 'cmp -s r1.npy r2.npy'
run solve w16.npy --nm 1:4 --objective sq --solver dp
check "solve --nm 1:4 --objective sq" '[ "$rc" -eq 0 ] && [[ $out == *"N:M 1:4"* && $out == *sq* ]]'
run solve w16.npy --nm 4:8 --solver dp
check "solve --nm 4:8" '[ "$rc" -eq 0 ] && [[ $out == *optimal* ]]'
# the device search: ref runs the GPU code path on the CPU reference entries
"$NMPERM" gen -o w64.npy --rows 32 --cols 64 --seed 9
"$NMPERM" solve w64.npy --solver osg --device ref --json >dref.json 2>/dev/null
"$NMPERM" solve w64.npy --solver osg --device cpu --json >dcpu.json 2>/dev/null
check "solve osg --device ref: kept $(json_get kept dref.json) above identity $(json_get identity dref.json)" \
    '! le "$(json_get kept dref.json)" "$(json_get identity dref.json)" 0'
run solve w64.npy --solver osg --device auto --json
check "solve osg --device auto at 64 columns: the CPU search's answer" \
    '[ "$rc" -eq 0 ] && close "$(echo "$out" | json_get kept /dev/stdin)" "$(json_get kept dcpu.json)" 1e-12'
expect_fail "solve --device tpu" 1 "expected cpu, auto, gpu or ref" solve w64.npy --device tpu
expect_fail "solve swap --device ref: no device search" 1 "no device search" solve w64.npy --solver swap --device ref
expect_fail "solve osg --device ref --param stripes=3" 1 "stripes=2" solve w64.npy --solver osg --device ref --param stripes=3
run compare w64.npy --solvers swap,osg --device ref --csv dcmp.csv --quiet
check "compare --device ref: osg on the reference path (the same kept as solve), swap on the CPU" \
    '[ "$rc" -eq 0 ] && close "$(grep ",osg," dcmp.csv | cut -d, -f13)" "$(json_get kept dref.json)" 1e-6'
run batch w64.npy -o dbatch --solvers osg,swap --device ref --quiet
check "batch --device ref: journaled with the device" '[ "$rc" -eq 0 ] && grep -q "\"device\":\"ref\"" dbatch/journal.jsonl'
run batch w64.npy -o dbatch --solvers osg,swap --resume --quiet
check "batch --resume without the run's --device: refused, the difference named" \
    '[ "$rc" -eq 1 ] && [[ $err == *"--device"* ]]'
run permute "$SRC/instances/tiny_llama/model.safetensors" -o tl_ref.safetensors --device ref --verify --quiet
check "permute --device ref --verify (auto's device stage on every space)" '[ "$rc" -eq 0 ] && [ -s tl_ref.safetensors ]'
if ! nvidia-smi -L >/dev/null 2>&1; then # no GPU: 2 (NMP_ERR_GPU), or 1 built without CUDA
    run solve w64.npy --solver osg --device gpu
    check "solve --device gpu without a GPU: one line naming osg" \
        '[ "$rc" -eq 1 -o "$rc" -eq 2 ] && [[ $err == *"osg --device gpu: "* ]] && [ "$(echo "$err" | wc -l)" -eq 1 ]'
fi
ones() { # ones N: N float32 values 1.0
    local k
    for ((k = 0; k < $1; k++)); do printf '\x00\x00\x80\x3f'; done
}
npy x16.npy '<f4' '(16,)'
ones 16 >>x16.npy
"$NMPERM" gen -o s16.npy --rows 64 --cols 16 --seed 11
run score w16.npy --importance x16.npy
check "score --importance" '[ "$rc" -eq 0 ] && [[ $out == *importance* ]]'
run score w16.npy --objective saliency --saliency s16.npy
check "score --objective saliency" '[ "$rc" -eq 0 ] && [[ $out == *saliency* ]]'

# --importance implies --objective importance (and is refused with another objective): W = 1
# (2 x 8), x = (4 3 2 1 1 2 3 4): each row keeps 4 + 3 + 4 + 3 = 14 under importance, 4 under abs
npy ones28.npy '<f4' '(2, 8)'
ones 16 >>ones28.npy
npy x4321.npy '<f4' '(8,)'
printf '\x00\x00\x80\x40\x00\x00\x40\x40\x00\x00\x00\x40\x00\x00\x80\x3f' >>x4321.npy
printf '\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40' >>x4321.npy
"$NMPERM" score ones28.npy --importance x4321.npy --json >imp.json 2>err.txt
check "--importance alone scores the importance objective (kept 28)" \
    '[ "$(json_get objective imp.json)" = importance ] && close "$(json_get kept imp.json)" 28 1e-9'
run score --help
check "score --help says --importance implies the objective" \
    '[[ $out == *"--importance X.npy"*"implies --objective importance"* ]]'
expect_fail "--importance with --objective abs is refused" 1 "--importance" \
    score ones28.npy --importance x4321.npy --objective abs
expect_fail "--importance and --saliency without --objective are refused" 1 "--saliency" \
    score w16.npy --importance x16.npy --saliency s16.npy

# Ctrl-C: the first SIGINT stops the search, the result is still reported and written
"$NMPERM" gen -o big.npy --rows 512 --cols 256 --seed 1
"$NMPERM" solve big.npy --solver swap --param escapes=1e9 --time-limit 60 --json -o int.npy \
    >int.json 2>/dev/null &
pid=$!
sleep 2
kill -INT "$pid" 2>/dev/null
wait "$pid"
int_rc=$?
check "SIGINT: exit 0 with status interrupted" '[ "$int_rc" -eq 0 ] && [ "$(json_get status int.json)" = interrupted ]'
check "SIGINT: permutation written" '[ -s int.npy ]'

# ------------------------------------------------------------------ progress lines
# on stderr only when it is a terminal (not with --quiet) or with --progress
run solve big.npy --solver swap --param escapes=1e9 --time-limit 1.5 --quiet
check "solve --quiet, not a terminal: no progress" '[ "$rc" -eq 0 ] && [ -z "$err" ]'
run solve big.npy --solver swap --param escapes=1e9 --time-limit 1.5 --quiet --progress
check "solve --progress, not a terminal: plain lines (no carriage return)" \
    '[ "$rc" -eq 0 ] && grep -q "iter [0-9]*  best [0-9.]*  bound" err.txt && ! grep -q $'"'"'\r'"'"' err.txt'
run bound w16.npy --progress --time-limit 5
check "bound --progress, not a terminal: a line labelled lp bound" \
    '[ "$rc" -eq 0 ] && grep -q "^lp bound .*iter" err.txt || ! "$NMPERM" solvers | grep -q "^colgen "'
run compare big.npy --solvers swap --param swap.escapes=1e9 --time-limit 1.5 --bound-time 0 \
    --quiet --progress
check "compare --progress --quiet, not a terminal: labelled lines, no table" \
    '[ "$rc" -eq 0 ] && [ -z "$out" ] && grep -q "^\[1/1\] big swap .*iter" err.txt'
run compare big.npy --solvers swap --param swap.escapes=1e9 --time-limit 1.5 --bound-time 0
check "compare, not a terminal: no progress" '[ "$rc" -eq 0 ] && [ -z "$err" ]'
if command -v script >/dev/null 2>&1; then
    script -qec "'$NMPERM' solve big.npy --solver swap --param escapes=1e9 --time-limit 1.5 --json >tty.json" \
        /dev/null >tty.txt 2>&1
    check "solve on a terminal: one redrawn line (carriage returns)" \
        'grep -q $'"'"'\r'"'"' tty.txt && grep -q "iter [0-9]*  best" tty.txt'
    script -qec "'$NMPERM' solve big.npy --solver swap --param escapes=1e9 --time-limit 1 --quiet" \
        /dev/null >tty.txt 2>&1
    check "solve --quiet on a terminal: no progress" '! grep -q "iter" tty.txt'
else
    bad "progress on a terminal" "script(1) (util-linux) is needed to test it"
fi

# ------------------------------------------------------------------ outputs that are inputs
# refused before any work, exit 1, one line naming both; the input is left as it was
cp w16.npy keep.npy
expect_fail "solve -o the input" 1 "w16.npy: the output is the same file as the input w16.npy" \
    solve w16.npy -o w16.npy --solver swap
check "solve -o the input: input unchanged" 'cmp -s w16.npy keep.npy'
expect_fail "solve -o ./input (another spelling)" 1 "the input w16.npy" \
    solve w16.npy -o ./w16.npy --solver swap
mkdir -p sub
expect_fail "solve -o sub/../input" 1 "sub/../w16.npy" solve w16.npy -o sub/../w16.npy
ln -s w16.npy link16.npy
expect_fail "solve -o a symbolic link to the input" 1 "the input w16.npy" \
    solve w16.npy -o link16.npy
ln w16.npy hard16.npy
expect_fail "solve -o a hard link to the input" 1 "the input w16.npy" solve w16.npy -o hard16.npy
expect_fail "solve -o the --start file" 1 "the input p16.npy" \
    solve w16.npy --start p16.npy -o p16.npy
expect_fail "solve -o the --importance file" 1 "the input x16.npy" \
    solve w16.npy --importance x16.npy -o x16.npy
expect_fail "solve -o the --saliency file" 1 "the input s16.npy" \
    solve w16.npy --saliency s16.npy -o s16.npy
expect_fail "solve of a missing file -o the same name" 1 "new.npy" solve new.npy -o ./new.npy
check "solve refusals changed no input" 'cmp -s w16.npy keep.npy'
expect_fail "compare --csv the input" 1 "w16.npy: the output is the same file as the input w16.npy" \
    compare a1.npy w16.npy --solvers identity --csv w16.npy
expect_fail "compare --json the input" 1 "the input a1.npy" \
    compare a1.npy --solvers identity --json ./a1.npy
expect_fail "compare --csv and --json the same new file" 1 "is the same file as the output t.out" \
    compare a1.npy --solvers identity --csv t.out --json ./t.out
check "compare refusals wrote nothing" '[ ! -e t.out ] && cmp -s w16.npy keep.npy'
expect_fail "gpu-eval --report the input" 1 "the input w16.npy" gpu-eval w16.npy --report w16.npy
expect_fail "gpu-eval --report the --perm file" 1 "the input p16.npy" \
    gpu-eval w16.npy --perm p16.npy --report p16.npy
check "gpu-eval refusals changed no input" 'cmp -s w16.npy keep.npy'
run solve w16.npy -o out16.npy --solver swap --quiet
check "solve -o a new file still works" '[ "$rc" -eq 0 ] && [ -s out16.npy ]'
run solve w16.npy -o out16.npy --solver swap --quiet
check "solve -o an existing output (not an input) replaces it" '[ "$rc" -eq 0 ] && [ -s out16.npy ]'

# ------------------------------------------------------------------ gpu-eval checks its files first
expect_fail "gpu-eval names a missing input (before the device)" 1 "missing.npy" \
    gpu-eval missing.npy --report r.json
expect_fail "gpu-eval names a bad --perm (before the device)" 1 "p8.npy" \
    gpu-eval w16.npy --perm p8.npy --report r.json
expect_fail "gpu-eval names an unwritable report (before the device)" 1 "nodir/r.json" \
    gpu-eval w16.npy --report nodir/r.json

# ------------------------------------------------------------------ float32 range
# 16 x 8 of 3e38: every value is finite, but a group's kept sum is not: refused, naming the file
npy huge.npy '<f4' '(16, 8)'
for ((k = 0; k < 128; k++)); do printf '\xe6\xb1\x61\x7f'; done >>huge.npy
check "huge.npy holds 128 values of 3e38" \
    '[ "$(npy_values huge.npy f4 | awk "\$1 == 3e38" | wc -l)" -eq 128 ]'
expect_fail "score: sums beyond float32 are refused" 1 "huge.npy" score huge.npy
expect_fail "score --json: sums beyond float32 are refused" 1 "huge.npy" score huge.npy --json
expect_fail "solve: sums beyond float32 are refused" 1 "huge.npy" solve huge.npy --solver swap
# 1e35 (the total, 1.28e37, is within FLT_MAX / 16): finite and right, 2 kept of 4 per row
npy big35.npy '<f4' '(16, 8)'
for ((k = 0; k < 128; k++)); do printf '\x0c\x13\x9a\x79'; done >>big35.npy
read -r ref_ident ref_rb _ _ < <(nm_ref big35.npy 16 8 2 4)
"$NMPERM" score big35.npy --json >b35.json 2>err.txt
check "score 1e35 values: identity finite and right ($ref_ident)" \
    'awk -v a="$(json_get identity b35.json)" -v b="$ref_ident" "BEGIN { exit !(a > 0 && (a - b) / b < 1e-6 && (b - a) / b < 1e-6) }"'
"$NMPERM" solve big35.npy --solver swap --json >s35.json 2>err.txt
check "solve 1e35 values: kept finite and right" \
    'awk -v a="$(json_get kept s35.json)" -v b="$ref_ident" "BEGIN { exit !(a > 0 && (a - b) / b < 1e-6 && (b - a) / b < 1e-6) }"'
npy sqbig.npy '<f4' '(2, 4)'
for ((k = 0; k < 8; k++)); do printf '\xec\x78\xad\x60'; done >>sqbig.npy
expect_fail "--objective sq overflowing float32 is refused" 1 "overflows" score sqbig.npy --objective sq

# ------------------------------------------------------------------ bad inputs
head -c 150 ref.npy >trunc.npy
expect_fail "truncated .npy" 1 "trunc.npy" score trunc.npy
head -c 5 ref.npy >short.npy
expect_fail "truncated header" 1 "short.npy" score short.npy
npy int32.npy '<i4' '(4, 8)'
head -c 128 /dev/zero >>int32.npy
expect_fail "wrong dtype (int32 matrix)" 1 "int32.npy" score int32.npy
npy cube.npy '<f4' '(2, 2, 8)'
head -c 128 /dev/zero >>cube.npy
expect_fail "3-D array" 1 "cube.npy" score cube.npy
"$NMPERM" gen -o c6.npy --rows 8 --cols 6
expect_fail "cols not divisible by M" 1 "c6.npy" score c6.npy
expect_fail "cols not divisible by M (solve)" 1 "c6.npy" solve c6.npy --solver swap
npy nan.npy '<f4' '(2, 4)'
printf '\x00\x00\x80\x3f\x00\x00\xc0\x7f\x00\x00\x80\x3f\x00\x00\x80\x3f' >>nan.npy
printf '\x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\x3f' >>nan.npy
expect_fail "NaN value" 1 "nan.npy" score nan.npy
npy inf.npy '<f4' '(2, 4)'
printf '\x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\x3f' >>inf.npy
printf '\x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\x3f\x00\x00\x80\xff' >>inf.npy
expect_fail "Inf value" 1 "inf.npy" solve inf.npy
expect_fail "nonexistent file" 1 "missing.npy" score missing.npy
printf 'not a numpy file at all, just text\n' >text.npy
expect_fail "not a .npy file" 1 "text.npy" score text.npy
expect_fail "unwritable output path" 1 "$TMP/nodir/p.npy" solve w16.npy -o "$TMP/nodir/p.npy"
check "unwritable output path: no file created" '[ ! -e "$TMP/nodir" ]'
expect_fail "output under a regular file" 1 "w16.npy/p.npy" solve w16.npy -o w16.npy/p.npy
expect_fail "unknown solver (no output written)" 1 "nosuch" solve w16.npy --solver nosuch -o never.npy
check "failed solve writes no output" '[ ! -e never.npy ]'
expect_fail "bad --nm 5:4" 1 "5:4" score w16.npy --nm 5:4
expect_fail "bad --nm 0:4" 1 "0:4" score w16.npy --nm 0:4
expect_fail "bad --nm x" 1 "'x'" solve w16.npy --nm x
expect_fail "bad --objective" 1 "l3" score w16.npy --objective l3
expect_fail "unknown --param" 1 "bogus" solve w16.npy --solver swap --param bogus=1
expect_fail "--param out of range" 1 "escapes" solve w16.npy --solver swap --param escapes=-1
expect_fail "--param not a number" 1 "many" solve w16.npy --solver swap --param escapes=many
expect_fail "--param without =" 1 "escapes" solve w16.npy --solver swap --param escapes
expect_fail "bad --time-limit" 1 "soon" solve w16.npy --time-limit soon
expect_fail "negative --time-limit" 1 "-1" solve w16.npy --time-limit -1
expect_fail "bad --seed" 1 "1.5" solve w16.npy --seed 1.5
expect_fail "bad --threads" 1 "two" solve w16.npy --threads two
expect_fail "unknown option" 1 "--fast" solve w16.npy --fast
expect_fail "missing option value" 1 "--solver" solve w16.npy --solver
expect_fail "missing input file" 1 "W.npy" score
expect_fail "two input files" 1 "a1.npy" score w16.npy a1.npy
expect_fail "--objective importance without a vector" 1 "--importance" score w16.npy --objective importance
npy x8.npy '<f4' '(8,)'
ones 8 >>x8.npy
expect_fail "importance vector of wrong length" 1 "x8.npy" score w16.npy --importance x8.npy
expect_fail "saliency of wrong shape" 1 "a1.npy" score w16.npy --saliency a1.npy
"$NMPERM" gen -o w8.npy --rows 64 --cols 8 --seed 5
"$NMPERM" solve w8.npy --solver dp -o p8.npy >/dev/null 2>&1
expect_fail "perm of wrong length" 1 "p8.npy" score w16.npy --perm p8.npy
npy dup.npy '<i8' '(16,)'
head -c 128 /dev/zero >>dup.npy
expect_fail "perm not a bijection" 1 "dup.npy" score w16.npy --perm dup.npy
expect_fail "start perm not a bijection" 1 "dup.npy" solve w16.npy --start dup.npy
expect_fail "perm file is a matrix" 1 "w16.npy" score w16.npy --perm w16.npy
expect_fail "dp refuses too many columns" 1 "ref.npy" solve ref.npy --solver dp

# ------------------------------------------------------------------ instances/catalog.tsv
# Every committed instance: shape, identity and row bound against the catalog and against the awk
# reference (nm_ref); the optimum against an awk enumeration of all partitions (up to 12 columns)
# and against dp (up to 24 columns: the catalog's optima come from dp, so for 16-24 columns this
# is a regression check, not an independent one). A missing catalog or instance is a failure.
catalog=$SRC/instances/catalog.tsv
check "instances/catalog.tsv exists" '[ -s "$catalog" ]'
bad_rows=0
checked=0
enumerated=0
while IFS=$'\t' read -r name rows cols nm identity row_bound optimum _; do
    [ "$name" = name ] && continue
    f=$SRC/instances/$name.npy
    if ! "$NMPERM" score "$f" --nm "$nm" --json >inst.json 2>inst.err; then
        echo "      $name: $(cat inst.err)"
        bad_rows=$((bad_rows + 1))
        continue
    fi
    read -r ref_ident ref_rb ref_opt _ < <(nm_ref "$f" "$rows" "$cols" "${nm%%:*}" "${nm##*:}")
    if ! { close "$(json_get identity inst.json)" "$identity" 1e-3 &&
        close "$(json_get row_bound inst.json)" "$row_bound" 1e-3 &&
        close "$ref_ident" "$identity" 1e-3 && close "$ref_rb" "$row_bound" 1e-3 &&
        [ "$(json_get rows inst.json)" = "$rows" ] && [ "$(json_get cols inst.json)" = "$cols" ]; }; then
        echo "      $name: identity/row bound/shape mismatch (catalog $identity $row_bound, nmperm $(json_get identity inst.json) $(json_get row_bound inst.json), awk $ref_ident $ref_rb)"
        bad_rows=$((bad_rows + 1))
    fi
    if [ "$ref_opt" != - ]; then
        enumerated=$((enumerated + 1))
        close "$ref_opt" "$optimum" 1e-3 ||
            { echo "      $name: catalog optimum $optimum, enumeration $ref_opt"; bad_rows=$((bad_rows + 1)); }
    fi
    if [ "$cols" -le 24 ]; then
        "$NMPERM" solve "$f" --nm "$nm" --solver dp --json -o inst.npy >inst.json 2>/dev/null &&
            close "$(json_get kept inst.json)" "$optimum" 1e-3 ||
            { echo "      $name: dp does not reach the catalog optimum $optimum"; bad_rows=$((bad_rows + 1)); }
        read -r _ _ _ ref_kept < <(nm_ref "$f" "$rows" "$cols" "${nm%%:*}" "${nm##*:}" inst.npy)
        close "$ref_kept" "$optimum" 1e-3 ||
            { echo "      $name: dp's permutation scores $ref_kept in awk"; bad_rows=$((bad_rows + 1)); }
    fi
    checked=$((checked + 1))
done <"$catalog"
check "instances/catalog.tsv: $checked instances match ($enumerated optima enumerated)" \
    '[ "$bad_rows" -eq 0 ] && [ "$checked" -ge 15 ] && [ "$enumerated" -ge 4 ]'

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
