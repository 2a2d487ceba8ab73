#!/usr/bin/env bash
# batch_set.sh: the benchmark set of nmperm batch: 320 real-sized weight matrices with input
# channels (cols) from 16 to 2048 and mixed shapes, written with 'nmperm gen' (|N(0,1)|,
# deterministic), about 0.9 GB. The matrices are not committed; this script makes them.
#
# usage: bench/batch_set.sh path/to/nmperm OUTDIR
# Then (docs/benchmarks.md, "Batch"):
#   nmperm batch OUTDIR -o RESULTS --budget 300 --jobs 2 --threads 1
set -eu
NMPERM=${1:?usage: batch_set.sh path/to/nmperm OUTDIR}
OUT=${2:?usage: batch_set.sh path/to/nmperm OUTDIR}
mkdir -p "$OUT"
# 20 layers per column count; rows cycle through aspect ratios 1/4 .. 4 (16 .. 4096 rows), as in
# MLP (up 4C x C, down C x 4C), attention (C x C) and head (C/4 .. C/2) projections
cols=(16 24 32 48 64 96 128 192 256 320 384 512 768 1024 1536 2048)
ratios=(1 4 2 1 0.5 0.25 1 2 4 1)
k=0
for c in "${cols[@]}"; do
    for j in $(seq 0 19); do
        r=$(awk -v c="$c" -v q="${ratios[$((j % 10))]}" 'BEGIN { r = int(c * q / 16) * 16; if (r < 16) r = 16; if (r > 4096) r = 4096; print r }')
        k=$((k + 1))
        dir=$(printf '%s/c%04d' "$OUT" "$c")
        mkdir -p "$dir"
        [ -s "$dir/layer$j.npy" ] ||
            "$NMPERM" gen -o "$dir/layer$j.npy" --rows "$r" --cols "$c" --seed "$k"
    done
done
echo "$k matrices in $OUT"
