#!/usr/bin/env bash
# test_cli_compare.sh: end-to-end tests of nmperm bound and nmperm compare: bounds against solver
# scores and known optima, the table, CSV and JSON outputs, usage errors
#
# usage: tests/test_cli_compare.sh path/to/nmperm [source root]
# Prints one line per check and ends with "N passed, M failed"; exits nonzero on any failure.
# The LP bound checks run only when the build has the colgen solver (GLPK). Expected values come
# from the awk references of tests/cli_harness.sh (enumerated optima, the full set-partitioning
# LP by a dense simplex) or from apex's published figures, not from nmperm itself.
set -u

NMPERM=${1:?usage: test_cli_compare.sh path/to/nmperm [source root]}
SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
INST=$SRC/instances
. "$SRC/tests/cli_harness.sh" || exit 1
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-compare.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

have_colgen=0
"$NMPERM" solvers | grep -q '^colgen ' && have_colgen=1
echo "#     colgen (GLPK) in this build: $have_colgen"

# ------------------------------------------------------------------ help
run bound --help
check "bound --help" '[ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm bound"* ]]'
run compare --help
check "compare --help" '[ "$rc" -eq 0 ] && [[ $out == *"usage: nmperm compare"* ]]'
run --help
check "main help lists bound and compare" "grep -q '^  compare ' out.txt && grep -q '^  bound ' out.txt"
check "instances/catalog.tsv exists" '[ -s "$INST/catalog.tsv" ]'

# optimum NAME: the enumerated optimum (awk) up to 12 columns, else the catalog's (from dp)
optimum() {
    local r=${1#*_}
    local rows=${r%x*} cols=${r#*x}
    if [ "$cols" -le 12 ]; then
        nm_ref "$INST/$1.npy" "$rows" "$cols" 2 4 | cut -d' ' -f3
    else
        awk -F'\t' -v n="$1" '$1 == n { print $7 }' "$INST/catalog.tsv"
    fi
}

# ------------------------------------------------------------------ bound vs solvers
# every solver's kept score is at most the bound; the bound at most the row bound; the optimum
# lies between
small="absnormal_16x8 uniform_32x12 absnormal_64x16 uniform_128x20"
bad_rows=0
for name in $small; do
    f=$INST/$name.npy
    "$NMPERM" bound "$f" --json --time-limit 20 >b.json 2>b.err || { bad_rows=$((bad_rows + 1)); continue; }
    bnd=$(json_get bound b.json)
    rb=$(json_get row_bound b.json)
    le "$bnd" "$rb" 1e-9 || { echo "      $name: bound $bnd above the row bound $rb"; bad_rows=$((bad_rows + 1)); }
    "$NMPERM" compare "$f" --solvers identity,random,swap,osg,lns,dp --time-limit 5 --bound-time 0 \
        --quiet --csv s.csv 2>/dev/null || { bad_rows=$((bad_rows + 1)); continue; }
    while IFS=, read -r file solver rows cols nm obj identity row_bound lp lps best src kept rest; do
        [ "$file" = file ] && continue
        le "$kept" "$bnd" 1e-6 ||
            { echo "      $name: $solver keeps $kept > bound $bnd"; bad_rows=$((bad_rows + 1)); }
    done <s.csv
    opt=$(optimum "$name")
    le "$opt" "$bnd" 1e-3 || { echo "      $name: optimum '$opt' > bound $bnd"; bad_rows=$((bad_rows + 1)); }
done
check "bound >= every solver's kept score and the optimum, <= row bound ($small)" '[ "$bad_rows" -eq 0 ]'

# ------------------------------------------------------------------ LP bound (GLPK)
if [ "$have_colgen" -eq 1 ]; then
    run bound "$INST/absnormal_64x16.npy" --json
    check "bound --json: LP solved, below the row bound, above the optimum" \
        '[ "$rc" -eq 0 ] && [ "$(json_get lp_complete out.txt)" = true ] &&
         [ "$(json_get bound_source out.txt)" = lp ] &&
         { [ "$(json_get bound_kind out.txt)" = lp ] || [ "$(json_get bound_kind out.txt)" = optimum ]; } &&
         le "$(json_get lp_bound out.txt)" "$(json_get row_bound out.txt)" 0 &&
         le "$(optimum absnormal_64x16)" "$(json_get lp_bound out.txt)" 1e-3'
    check "bound --json parses" 'is_json out.txt'
    # the LP value against the full LP (every group a column) solved by the awk simplex;
    # absnormal_32x12's LP is fractional (above its optimum), uniform_32x12's integral
    for name in absnormal_32x12 uniform_32x12; do
        lp=$(lp_ref "$INST/$name.npy" 32 12 2 4)
        opt=$(optimum "$name")
        run bound "$INST/$name.npy" --json
        check "$name: colgen's LP bound is the full LP's value $lp (optimum $opt)" \
            '[ "$rc" -eq 0 ] && [ "$(json_get lp_complete out.txt)" = true ] &&
             close "$(json_get lp_bound out.txt)" "$lp" 1e-3 && le "$opt" "$lp" 1e-6'
    done
    # apex reference: apex publishes a best permutation of 2921.947; the LP bound must lie above
    # it and above the awk score of lns's permutation, and below the row bound. 2927.827 is the
    # project's own LP value (docs/benchmarks.md): a regression figure, not an independent one.
    apex=$INST/apex_ref_128x64.npy
    "$NMPERM" solve "$apex" --solver lns -o apex_lns.npy --quiet # fixed work: the same perm anywhere
    read -r _ apex_rb _ apex_kept < <(nm_ref "$apex" 128 64 2 4 apex_lns.npy)
    check "apex reference: lns's permutation scores $apex_kept in awk, above apex's 2921.947" \
        'le 2921.947 "$apex_kept" 1e-3'
    run bound "$apex" --json --time-limit 60
    check "apex reference: LP solved, between $apex_kept and the row bound, 2927.827 as before" \
        '[ "$rc" -eq 0 ] && [ "$(json_get lp_complete out.txt)" = true ] &&
         le "$apex_kept" "$(json_get lp_bound out.txt)" 1e-6 &&
         le "$(json_get lp_bound out.txt)" "$apex_rb" 1e-3 &&
         close "$(json_get lp_bound out.txt)" 2927.827 1e-3'
    # a time-limited LP: 128 x 512 takes minutes (23 pricing rounds in 3 s), so 0.2 s stops it on
    # any machine; a stopped LP's bound is still valid: at least the identity's kept score, at most
    # the row bound
    "$NMPERM" gen -o tl512.npy --rows 128 --cols 512 --seed 5
    tl_identity=$("$NMPERM" score tl512.npy --json | json_get identity /dev/stdin)
    run bound tl512.npy --time-limit 0.2 --json
    check "time-limited LP (128x512, 0.2 s): LP not complete, a valid bound" \
        '[ "$rc" -eq 0 ] && [ "$(json_get lp_complete out.txt)" = false ] &&
         { [ "$(json_get bound_kind out.txt)" = lagrangian ] || [ "$(json_get bound_kind out.txt)" = row ]; } &&
         le "$tl_identity" "$(json_get bound out.txt)" 1e-6 &&
         le "$(json_get bound out.txt)" "$(json_get row_bound out.txt)" 1e-9'
    # a starved LP says that the bound is the row bound only (or a Lagrangian one), never the LP's
    run bound tl512.npy --time-limit 0.001
    check "bound text, starved LP: the bound line says row bound only or Lagrangian" \
        "[ \"\$rc\" -eq 0 ] && grep -Eq '^bound .*(the row bound only|a Lagrangian bound)' out.txt"
    run bound "$INST/uniform_32x12.npy"
    check "bound text: LP solved, rounds, bound line" \
        "[ \"\$rc\" -eq 0 ] &&
         grep -q '^lp bound    [0-9.]* *(colgen: LP solved.*pricing rounds)\$' out.txt &&
         grep -q '^bound       [0-9.]* *(the LP bound[;,] ' out.txt"
else
    run bound "$INST/absnormal_16x8.npy"
    check "bound without GLPK: row bound only, says the LP needs GLPK" \
        '[ "$rc" -eq 0 ] && [[ $out == *"needs GLPK"* && $out == *"the row bound"* ]]'
    echo "skip  LP bound checks (colgen not in this build)"
fi

# ------------------------------------------------------------------ compare
a=$INST/absnormal_32x12.npy
b=$INST/uniform_64x16.npy
run compare "$a" "$b" --solvers identity,swap,dp --csv t.csv --json t.json
check "compare: exit 0" '[ "$rc" -eq 0 ]'
check "compare: one row per (input, solver) (6)" '[ "$(grep -c -v "^#" out.txt)" -eq 6 ]'
check "compare: one '#' line per input and the header" '[ "$(grep -c "^# " out.txt)" -eq 3 ]'
check "compare: dp shows optimal on both" \
    '[ "$(awk '"'"'$2 == "dp" && $8 == "optimal" && $9 == "optimal"'"'"' out.txt | wc -l)" -eq 2 ]'
check "compare: identity has a positive gap" \
    '[ "$(awk '"'"'$2 == "identity" && $8 ~ /%$/ && $8 + 0 > 0'"'"' out.txt | wc -l)" -eq 2 ]'
check "compare: table columns fixed (9 fields per row)" \
    '[ "$(grep -v "^#" out.txt | awk "NF != 9" | wc -l)" -eq 0 ]'
check "compare: best bound of each input is dp's" \
    '[ "$(grep -c "best bound [0-9.]* (dp)" out.txt)" -eq 2 ]'
check "compare: CSV has a header and 6 rows" '[ -f t.csv ] && [ "$(wc -l <t.csv)" -eq 7 ]'
check "compare: CSV rows have 22 fields" '[ "$(awk -F, "NF != 22" t.csv | wc -l)" -eq 0 ]'
opt=$(optimum absnormal_32x12)
kept=$(awk -F, '$2 == "dp" && $1 ~ /absnormal_32x12/ { print $13 }' t.csv)
check "compare: dp's kept score $kept is the enumerated optimum $opt" 'close "$kept" "$opt" 1e-3'
check "compare: JSON parses" 'is_json t.json'
check "compare: no temporary files left" '[ "$(ls | grep -c tmp)" -eq 0 ]'
if command -v python3 >/dev/null 2>&1; then
    cat >t_check.py <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
ins = o["inputs"]
assert len(ins) == 2 and all(len(i["results"]) == 3 for i in ins)
assert all(r["optimal"] for i in ins for r in i["results"] if r["solver"] == "dp")
assert all(r["kept"] <= i["best_bound"] + 1e-6 for i in ins for r in i["results"])
assert all(i["best_bound"] <= i["row_bound"] for i in ins)
PY
    check "compare: JSON has 2 inputs x 3 results, dp optimal" 'python3 t_check.py t.json'
fi

# a solver that refuses an input gets a 'refused' row; the others still run
run compare "$INST/apex_ref_128x64.npy" --solvers swap,dp --time-limit 5 --bound-time 0.5
check "compare: dp refuses 64 columns, row 'refused', exit 0" \
    '[ "$rc" -eq 0 ] &&
     [ "$(awk '"'"'$2 == "dp" && $9 == "refused"'"'"' out.txt | wc -l)" -eq 1 ] &&
     [ "$(awk '"'"'$2 == "swap" && $5 ~ /^[0-9.]+$/'"'"' out.txt | wc -l)" -eq 1 ] &&
     [[ $err == *"64 columns"* ]]'

# rewriting the outputs replaces them (atomically) and keeps their mode
chmod 640 t.csv
run compare "$a" --solvers identity --csv t.csv --bound-time 0 --quiet
check "compare --quiet: no table" '[ "$rc" -eq 0 ] && [ -z "$out" ]'
check "compare: CSV rewritten (1 row), mode kept" \
    '[ "$(wc -l <t.csv)" -eq 2 ] && [ "$(stat -c %a t.csv)" = 640 ]'

# ------------------------------------------------------------------ usage errors
expect_fail "compare: unknown solver" 1 "nosuch" compare "$a" --solvers identity,nosuch
expect_fail "compare: unknown solver before the missing file" 1 "nosuch" \
    compare missing.npy --solvers nosuch
expect_fail "compare: missing file named" 1 "missing.npy" compare "$a" missing.npy --solvers dp
expect_fail "compare: solver listed twice" 1 "twice" compare "$a" --solvers swap,swap
expect_fail "compare: empty solver name" 1 "empty" compare "$a" --solvers swap,
expect_fail "compare: --param for a solver not listed" 1 "anneal" \
    compare "$a" --solvers swap --param anneal.t0=1
expect_fail "compare: --param unknown key" 1 "nokey" compare "$a" --solvers swap --param swap.nokey=1
expect_fail "compare: no input" 1 "missing the input" compare --solvers swap
expect_fail "compare: unwritable CSV folder" 1 "nodir/x.csv" \
    compare "$a" --solvers swap --csv nodir/x.csv
expect_fail "compare: bad --time-limit" 1 "--time-limit" compare "$a" --time-limit -1
expect_fail "bound: missing file named" 1 "missing.npy" bound missing.npy
expect_fail "bound: two inputs" 1 "more than one input" bound "$a" "$b"
expect_fail "bound: cols not divisible by M" 1 "absnormal_32x12.npy" bound "$a" --nm 2:8

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
