#!/usr/bin/env bash
# instances/make.sh: regenerates every instance file and instances/catalog.tsv, deterministically
#
# usage: instances/make.sh [build dir]   (default: build; uses <build dir>/nmperm)
# Each matrix comes from `nmperm gen` with a fixed seed, so the same files appear on any machine.
# catalog.tsv: name, rows, cols, nm, identity, row_bound, optimum, optimum_by (dp for cols <= 28;
# bnp for larger ones when the build has GLPK and it proves optimality within 120 s),
# lp_bound (the LP bound of set partitioning by column generation, `nmperm bound`; GLPK; empty
# unless the LP is solved to completion), command. Values are rounded to 4 decimals, so the file is
# the same on any machine (only a slow one may leave a bnp optimum empty). About 1-2 minutes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
nmperm=$build/nmperm
[ -x "$nmperm" ] || { echo "make.sh: $nmperm not found; build first (ninja -C $build)" >&2; exit 1; }

# name, then the arguments of `nmperm gen` (without -o)
instances=(
    "absnormal_16x8    --dist absnormal --seed 101 --rows 16 --cols 8"
    "uniform_16x8      --dist uniform   --seed 102 --rows 16 --cols 8"
    "absnormal_32x12   --dist absnormal --seed 103 --rows 32 --cols 12"
    "uniform_32x12     --dist uniform   --seed 104 --rows 32 --cols 12"
    "absnormal_64x16   --dist absnormal --seed 105 --rows 64 --cols 16"
    "uniform_64x16     --dist uniform   --seed 106 --rows 64 --cols 16"
    "absnormal_128x20  --dist absnormal --seed 107 --rows 128 --cols 20"
    "uniform_128x20    --dist uniform   --seed 108 --rows 128 --cols 20"
    "absnormal_128x24  --dist absnormal --seed 109 --rows 128 --cols 24"
    "uniform_128x24    --dist uniform   --seed 110 --rows 128 --cols 24"
    "absnormal_256x24  --dist absnormal --seed 111 --rows 256 --cols 24"
    "uniform_256x24    --dist uniform   --seed 112 --rows 256 --cols 24"
    "absnormal_256x28  --dist absnormal --seed 113 --rows 256 --cols 28"
    "uniform_256x28    --dist uniform   --seed 114 --rows 256 --cols 28"
    "apex_ref_128x64   --numpy-legacy-rand --seed 1 --rows 128 --cols 64"
)
nm=2:4
bnp_time=120   # seconds for bnp to prove an optimum beyond dp's reach
lp_time=120    # seconds for the LP bound
have_glpk=0
"$nmperm" solvers | grep -q '^bnp ' && have_glpk=1

# json_get KEY: a top-level value of the one-line JSON object on stdin
json_get() {
    sed -n "s/.*\"$1\": \"\{0,1\}\([^\",}]*\)\"\{0,1\}[,}].*/\1/p" | head -n 1
}

catalog=$here/catalog.tsv
tmp=$catalog.tmp
printf 'name\trows\tcols\tnm\tidentity\trow_bound\toptimum\toptimum_by\tlp_bound\tcommand\n' >"$tmp"
for line in "${instances[@]}"; do
    read -r name args <<<"$line"
    # shellcheck disable=SC2086 # args is a list of words
    "$nmperm" gen $args -o "$here/$name.npy"
    score=$("$nmperm" score "$here/$name.npy" --nm "$nm" --json)
    rows=$(json_get rows <<<"$score")
    cols=$(json_get cols <<<"$score")
    identity=$(printf '%.4f' "$(json_get identity <<<"$score")")
    row_bound=$(printf '%.4f' "$(json_get row_bound <<<"$score")")
    optimum=
    optimum_by=
    solver=
    limit=0
    if [ "$cols" -le 28 ]; then
        solver=dp
    elif [ "$have_glpk" -eq 1 ]; then
        solver=bnp
        limit=$bnp_time
    fi
    if [ -n "$solver" ]; then
        if solved=$("$nmperm" solve "$here/$name.npy" --nm "$nm" --solver "$solver" \
            --time-limit "$limit" --json --quiet); then
            if [ "$(json_get status <<<"$solved")" = optimal ]; then
                optimum=$(printf '%.4f' "$(json_get kept <<<"$solved")")
                optimum_by=$solver
            fi
        else
            echo "make.sh: $solver failed on $name; optimum left empty" >&2
        fi
    fi
    lp_bound=
    if [ "$have_glpk" -eq 1 ]; then
        if bounded=$("$nmperm" bound "$here/$name.npy" --nm "$nm" --time-limit "$lp_time" --json); then
            [ "$(json_get lp_complete <<<"$bounded")" = true ] &&
                lp_bound=$(printf '%.4f' "$(json_get lp_bound <<<"$bounded")")
        else
            echo "make.sh: bound failed on $name; lp_bound left empty" >&2
        fi
    fi
    if [ -n "$optimum" ] && [ -n "$lp_bound" ] &&
        awk -v o="$optimum" -v b="$lp_bound" 'BEGIN { exit !(b + 1e-4 < o) }'; then
        echo "make.sh: $name: LP bound $lp_bound below the optimum $optimum" >&2
        exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rows" "$cols" "$nm" \
        "$identity" "$row_bound" "$optimum" "$optimum_by" "$lp_bound" \
        "nmperm gen $(echo $args) -o instances/$name.npy" >>"$tmp"
    echo "$name: $rows x $cols, identity $identity, row bound $row_bound," \
        "optimum ${optimum:--} (${optimum_by:--}), LP bound ${lp_bound:--}" >&2
done
mv "$tmp" "$catalog"

# A tiny LLaMA-shaped checkpoint (3 layers, hidden 32, 4 query / 2 KV heads, config.json beside it)
# for the README's main command: nmperm permute instances/tiny_llama/model.safetensors ...
python3 "$here/../tests/gen_ckpt.py" llama "$here/tiny_llama/model.safetensors" --seed 1 --all-float
