#!/usr/bin/env bash
# test_cli.sh: end-to-end tests of the nmperm command line: help, gen, score, solve, bad inputs
#
# usage: tests/test_cli.sh path/to/nmperm [source root]
# Prints one line per check and ends with "N passed, M failed"; exits nonzero on any failure.
# Needs only bash and coreutils (python3 is used to parse JSON when present).
set -u

NMPERM=${1:?usage: test_cli.sh path/to/nmperm [source root]}
SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }
check() { # check NAME CMD...: passes when CMD succeeds
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

# run CMD...: runs nmperm with stdout in $out, stderr in $err, exit code in $rc
run() {
    "$NMPERM" "$@" >out.txt 2>err.txt
    rc=$?
    out=$(cat out.txt)
    err=$(cat err.txt)
}

# expect_fail NAME CODE NEEDLE ARGS...: exit CODE, nothing on stdout, one line on stderr that
# starts with "nmperm: " and contains NEEDLE (the file or value at fault)
expect_fail() {
    local name=$1 code=$2 needle=$3
    shift 3
    run "$@"
    local lines
    lines=$(wc -l <err.txt)
    if [ "$rc" -ne "$code" ]; then
        bad "$name" "exit $rc, expected $code (stderr: $err)"
    elif [ "$lines" -ne 1 ]; then
        bad "$name" "$lines lines on stderr, expected 1: $err"
    elif [ -n "$out" ]; then
        bad "$name" "unexpected stdout: $out"
    elif [[ $err != "nmperm: "* || $err != *"$needle"* ]]; then
        bad "$name" "message does not name '$needle': $err"
    else
        ok "$name  [$err]"
    fi
}

# json_get KEY FILE: the value of a top-level number or string in a one-line JSON object
json_get() {
    sed -n "s/.*\"$1\": \"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" "$2" | head -n 1
}

# close A B TOL: |A - B| <= TOL
close() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'
}

# is_json FILE: one valid JSON object (python3 when present, else its shape)
is_json() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys; o = json.load(open(sys.argv[1])); sys.exit(not isinstance(o, dict))' "$1"
    else
        [ "$(wc -l <"$1")" -eq 1 ] && grep -q '^{.*}$' "$1"
    fi
}

# npy FILE DESCR SHAPE: writes a .npy header (version 1.0, 128-byte aligned); data is appended
npy() {
    local header="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
    printf '\x93NUMPY\x01\x00\x76\x00' >"$1"
    printf '%-117s\n' "$header" >>"$1"
}

# ------------------------------------------------------------------ help and version
run --help
check "nmperm --help" eval '[ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm"* ]]'
run --version
check "nmperm --version" eval '[ "$rc" -eq 0 ] && [[ $out == "nmperm "[0-9]* ]]'
for cmd in score solve solvers gen; do
    run "$cmd" --help
    check "nmperm $cmd --help" [ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm $cmd"* ]]
    run "$cmd" -h
    check "nmperm $cmd -h" [ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm $cmd"* ]]
    run "$cmd" --version
    check "nmperm $cmd --version" [ "$rc" -eq 0 ] && [[ $out == "nmperm "[0-9]* ]]
done
run
check "nmperm without a command exits 1" [ "$rc" -eq 1 ]
expect_fail "unknown command" 1 "frobnicate" frobnicate

# ------------------------------------------------------------------ solvers
run solvers
check "solvers lists swap and dp" eval '[ "$rc" -eq 0 ] && [[ $out == *swap* && $out == *dp* ]]'
check "solvers shows parameter ranges" eval '[[ $out == *"default"*"range ["* ]]'
"$NMPERM" solvers --json >solvers.json 2>/dev/null
check "solvers --json parses" is_json solvers.json

# ------------------------------------------------------------------ gen
"$NMPERM" gen -o a1.npy --rows 32 --cols 16 --seed 7 &&
    "$NMPERM" gen -o a2.npy --rows 32 --cols 16 --seed 7 &&
    "$NMPERM" gen -o a3.npy --rows 32 --cols 16 --seed 8
check "gen exits 0" [ $? -eq 0 ]
check "gen: same seed, identical bytes" cmp -s a1.npy a2.npy
check "gen: other seed, other bytes" eval '! cmp -s a1.npy a3.npy'
check "gen: float32 header" grep -q "'descr': '<f4'" a1.npy
check "gen: header + 4 * 32 * 16 bytes" eval '[ "$(wc -c <a1.npy)" -gt $((4 * 32 * 16)) ]'
"$NMPERM" gen -o u1.npy --rows 16 --cols 8 --dist uniform --seed 3 &&
    "$NMPERM" gen -o u2.npy --rows 16 --cols 8 --dist uniform --seed 3
check "gen uniform: same seed, identical bytes" cmp -s u1.npy u2.npy
check "gen uniform differs from absnormal" eval '! cmp -s u1.npy a1.npy'
expect_fail "gen: missing --rows" 1 "gen" gen -o x.npy --cols 8
expect_fail "gen: bad --rows" 1 "abc" gen -o x.npy --rows abc --cols 8
expect_fail "gen: bad --dist" 1 "gauss" gen -o x.npy --rows 4 --cols 8 --dist gauss
expect_fail "gen: negative seed" 1 "-3" gen -o x.npy --rows 4 --cols 8 --seed -3
expect_fail "gen: unwritable output" 1 "$TMP/nodir/x.npy" gen -o "$TMP/nodir/x.npy" --rows 4 --cols 8
check "gen: no file after a failed write" [ ! -e "$TMP/nodir" ]

# ------------------------------------------------------------------ apex reference instance
"$NMPERM" gen --numpy-legacy-rand --seed 1 --rows 128 --cols 64 -o ref.npy
check "gen --numpy-legacy-rand exits 0" [ $? -eq 0 ]
"$NMPERM" gen --numpy-legacy-rand --seed 1 --rows 128 --cols 64 -o ref2.npy
check "gen --numpy-legacy-rand: deterministic" cmp -s ref.npy ref2.npy
if [ -f "$SRC/instances/apex_ref_128x64.npy" ]; then
    check "gen reproduces instances/apex_ref_128x64.npy" cmp -s ref.npy "$SRC/instances/apex_ref_128x64.npy"
fi
"$NMPERM" score ref.npy --json >ref.json 2>err.txt
check "score --json exits 0" [ $? -eq 0 ]
check "score --json parses" is_json ref.json
total=$(json_get total ref.json)
bound=$(json_get row_bound ref.json)
ident=$(json_get identity ref.json)
check "apex unpruned magnitude 4083.169 ($total)" close "$total" 4083.169 0.002
check "apex 50% rows bound 3042.332 ($bound)" close "$bound" 3042.332 0.002
check "apex default 2:4 (identity) 2852.376 ($ident)" close "$ident" 2852.376 0.002
run score ref.npy
check "score text names total, identity, row bound, kept, efficacy" eval \
    '[[ $out == *total*4083.1688* && $out == *identity*2852.3772* && $out == *"row bound"*3042.3323* && $out == *kept* && $out == *efficacy* ]]'

# ------------------------------------------------------------------ solve
"$NMPERM" gen -o w16.npy --rows 64 --cols 16 --seed 5
run solve w16.npy --solver dp
check "solve dp exits 0" [ "$rc" -eq 0 ]
check "solve dp prints status optimal" eval '[[ $out == *"status"*optimal* ]]'
check "solve prints no progress line when stderr is not a terminal" [ -z "$err" ]
"$NMPERM" solve w16.npy --solver dp --json -o p16.npy >dp.json 2>err.txt
check "solve --json exits 0" [ $? -eq 0 ]
check "solve --json parses" is_json dp.json
check "solve --json has a permutation" grep -q '"perm": \[[0-9]' dp.json
kept=$(json_get kept dp.json)
ident=$(json_get identity dp.json)
check "solve dp: kept $kept >= identity $ident" awk -v k="$kept" -v i="$ident" 'BEGIN { exit !(k != "" && k + 0 >= i + 0) }'
check "solve dp: status optimal in JSON" [ "$(json_get status dp.json)" = optimal ]
check "solve -o writes the permutation" [ -s p16.npy ]
"$NMPERM" score w16.npy --perm p16.npy --json >back.json 2>err.txt
check "score --perm reads it back" [ $? -eq 0 ]
check "score --perm: same kept score ($(json_get kept back.json))" close "$(json_get kept back.json)" "$kept" 1e-6
"$NMPERM" solve w16.npy --solver swap --json >swap.json 2>/dev/null
check "solve swap: kept <= dp optimum" awk -v s="$(json_get kept swap.json)" -v d="$kept" 'BEGIN { exit !(s != "" && s <= d + 1e-6) }'
"$NMPERM" solve w16.npy --solver swap --start p16.npy --json >start.json 2>/dev/null
check "solve --start from the optimum keeps it" close "$(json_get kept start.json)" "$kept" 1e-6
run solve w16.npy --solver random --seed 3 --param tries=5 --quiet -o q.npy
check "solve --quiet prints nothing and writes" eval '[ "$rc" -eq 0 ] && [ -z "$out$err" ] && [ -s q.npy ]'
"$NMPERM" solve w16.npy --solver random --seed 3 --param tries=20 -o r1.npy >/dev/null 2>&1
"$NMPERM" solve w16.npy --solver random --seed 3 --param tries=20 -o r2.npy >/dev/null 2>&1
check "solve: same seed, same permutation" cmp -s r1.npy r2.npy
run solve w16.npy --nm 1:4 --objective sq --solver dp
check "solve --nm 1:4 --objective sq" eval '[ "$rc" -eq 0 ] && [[ $out == *"N:M 1:4"* && $out == *sq* ]]'
run solve w16.npy --nm 4:8 --solver dp
check "solve --nm 4:8" eval '[ "$rc" -eq 0 ] && [[ $out == *optimal* ]]'
ones() { # ones N: N float32 values 1.0
    local k
    for ((k = 0; k < $1; k++)); do printf '\x00\x00\x80\x3f'; done
}
npy x16.npy '<f4' '(16,)'
ones 16 >>x16.npy
"$NMPERM" gen -o s16.npy --rows 64 --cols 16 --seed 11
run score w16.npy --importance x16.npy
check "score --importance" eval '[ "$rc" -eq 0 ] && [[ $out == *importance* ]]'
run score w16.npy --objective saliency --saliency s16.npy
check "score --objective saliency" eval '[ "$rc" -eq 0 ] && [[ $out == *saliency* ]]'

# Ctrl-C: the first SIGINT stops the search, the result is still reported and written
"$NMPERM" gen -o big.npy --rows 512 --cols 256 --seed 1
"$NMPERM" solve big.npy --solver swap --param escapes=1e9 --time-limit 60 --json -o int.npy \
    >int.json 2>/dev/null &
pid=$!
sleep 2
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
check "SIGINT: exit 0 with status interrupted" eval '[ "$rc" -eq 0 ] && [ "$(json_get status int.json)" = interrupted ]'
check "SIGINT: permutation written" [ -s int.npy ]

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
check "unwritable output path: no file created" [ ! -e "$TMP/nodir" ]
expect_fail "output under a regular file" 1 "w16.npy/p.npy" solve w16.npy -o w16.npy/p.npy
expect_fail "unknown solver (no output written)" 1 "nosuch" solve w16.npy --solver nosuch -o never.npy
check "failed solve writes no output" [ ! -e never.npy ]
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
# identity and row bound of every committed instance; the optimum (dp) of those up to 24 columns
if [ -f "$SRC/instances/catalog.tsv" ]; then
    bad_rows=0
    checked=0
    while IFS=$'\t' read -r name rows cols nm identity row_bound optimum command; do
        [ "$name" = name ] && continue
        f=$SRC/instances/$name.npy
        "$NMPERM" score "$f" --nm "$nm" --json >inst.json 2>/dev/null || { bad_rows=$((bad_rows + 1)); continue; }
        close "$(json_get identity inst.json)" "$identity" 1e-3 &&
            close "$(json_get row_bound inst.json)" "$row_bound" 1e-3 &&
            [ "$(json_get rows inst.json)" = "$rows" ] && [ "$(json_get cols inst.json)" = "$cols" ] ||
            { echo "      mismatch in $name"; bad_rows=$((bad_rows + 1)); }
        if [ -n "$optimum" ] && [ "$cols" -le 24 ]; then
            "$NMPERM" solve "$f" --nm "$nm" --solver dp --json >inst.json 2>/dev/null &&
                close "$(json_get kept inst.json)" "$optimum" 1e-3 ||
                { echo "      optimum mismatch in $name"; bad_rows=$((bad_rows + 1)); }
        fi
        checked=$((checked + 1))
    done <"$SRC/instances/catalog.tsv"
    check "instances/catalog.tsv matches $checked instances" [ "$bad_rows" -eq 0 ] && [ "$checked" -gt 0 ]
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
