#!/usr/bin/env bash
# test_cli_gpu.sh: the GPU commands' parts that run anywhere: gpu-eval --device cpu on the bundled
# tiny LLaMA (the CPU reference of the error columns, whole checkpoint and one layer), usage
# errors, the missing input reported before the device, and the one-line answer of a GPU command
# on a machine without a device (or without the GPU libraries, or a build without CUDA).
#
# usage: tests/test_cli_gpu.sh path/to/nmperm [source root]
# Prints one line per check and ends with "N passed, M failed"; exits nonzero on any failure.
set -u

NMPERM=${1:?usage: test_cli_gpu.sh path/to/nmperm [source root]}
SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-cli-gpu.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
MODEL=$SRC/instances/tiny_llama/model.safetensors

passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }
check() { # check NAME CMD...: passes when CMD succeeds
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
run() {
    "$NMPERM" "$@" >out.txt 2>err.txt
    rc=$?
    out=$(cat out.txt)
    err=$(cat err.txt)
}
# expect_fail NAME CODE NEEDLE ARGS...: exit CODE, one line on stderr containing NEEDLE
expect_fail() {
    local name=$1 code=$2 needle=$3
    shift 3
    run "$@"
    if [ "$rc" -ne "$code" ]; then
        bad "$name" "exit $rc, expected $code (stderr: $err)"
    elif [ "$(wc -l <err.txt)" -ne 1 ]; then
        bad "$name" "expected one line on stderr: $err"
    elif [[ $err != "nmperm: "* || $err != *"$needle"* ]]; then
        bad "$name" "message does not name '$needle': $err"
    else
        ok "$name  [$err]"
    fi
}
# jq_py EXPR FILE: python3 expression over the JSON object o
jq_py() {
    python3 -c "import json, sys; o = json.load(open(sys.argv[1])); print($1)" "$2"
}

# ------------------------------------------------------------------ usage errors
expect_fail "gpu-eval without input" 1 "missing the input" gpu-eval
expect_fail "gpu-eval checkpoint without --report/--all" 1 "--report R.json" gpu-eval "$MODEL"
expect_fail "gpu-eval --all on one layer" 1 "--all is for a checkpoint" gpu-eval w.npy --all
expect_fail "gpu-eval --perm on a checkpoint" 1 "--perm is for one layer" gpu-eval "$MODEL" --perm p.npy --all
expect_fail "gpu-eval --device tpu" 1 "--device 'tpu'" gpu-eval "$MODEL" --all --device tpu
expect_fail "gpu-eval --dtype fp32 (1:2 in cuSPARSELt)" 1 "1:2" gpu-eval "$MODEL" --all --dtype fp32
expect_fail "gpu-bench --m without --n --k" 1 "--m, --n and --k" gpu-bench --m 64
# the input is named before anything about the device
expect_fail "gpu-eval missing.npy: the input first" 1 "missing.npy" gpu-eval missing.npy
expect_fail "gpu-eval missing.safetensors: the input first" 1 "missing.safetensors" gpu-eval missing.safetensors --all
expect_fail "gpu-eval missing report" 1 "nope.json" gpu-eval "$MODEL" --report nope.json

# ------------------------------------------------------------------ without a device
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    # one line: what is missing (build, library with its pip package, or the device), exit 1
    run gpu-bench --m 64 --n 64 --k 64
    if [ "$rc" -eq 1 ] && [ "$(wc -l <err.txt)" -eq 1 ] && [ -z "$out" ] &&
        [[ $err == *"without CUDA"* || $err == *"pip install"* || $err == *"no CUDA device"* ||
           $err == *"unavailable in this build"* ]]; then
        ok "gpu-bench without a device: one line  [$err]"
    else
        bad "gpu-bench without a device" "exit $rc: $err"
    fi
    run gpu-eval "$MODEL" --all
    check "gpu-eval without a device: exit 1, one line" eval '[ "$rc" -eq 1 ] && [ "$(wc -l <err.txt)" -eq 1 ]'
fi

# ------------------------------------------------------------------ the CPU reference
if ! command -v python3 >/dev/null 2>&1; then
    echo "$passed passed, $failed failed (python3 missing: checkpoint checks skipped)"
    [ "$failed" -eq 0 ]
    exit
fi
run permute "$MODEL" -o perm.safetensors --report r.json
check "permute tiny_llama (report for gpu-eval)" [ "$rc" -eq 0 ]
run gpu-eval "$MODEL" --report r.json --device cpu --tokens 256 --out e.json
check "gpu-eval --report --device cpu: exit 0" [ "$rc" -eq 0 ]
check "gpu-eval: one table row per consumer (6: 3 down_proj, 3 o_proj)" \
    [ "$(grep -c '^  model\.layers\.[0-9]\.\(mlp\.down_proj\|self_attn\.o_proj\)\.weight ' out.txt)" -eq 6 ]
check "gpu-eval: totals line" grep -q '^# mean error over 6 tensors' out.txt
check "gpu-eval --out: 6 tensors, all permuted, errors from the cpu" \
    [ "$(jq_py 'sum(1 for t in o["tensors"] if t["permuted"] and t["errors_from"] == "cpu")' e.json)" = 6 ]
check "gpu-eval: errors in (0, 1.5), the timing columns absent" \
    [ "$(jq_py 'all(0 < t["err_identity"] < 1.5 and 0 < t["err_perm"] < 1.5 and "dense_ms" not in t for t in o["tensors"])' e.json)" = True ]
check "gpu-eval: the permutation lowers the mean output error" \
    [ "$(jq_py 'o["totals"]["mean_err_perm"] < o["totals"]["mean_err_identity"]' e.json)" = True ]
check "gpu-eval: totals are the means of the rows" \
    [ "$(jq_py 'abs(o["totals"]["mean_err_perm"] - sum(t["err_perm"] for t in o["tensors"]) / 6) < 1e-12' e.json)" = True ]
cp e.json e1.json
run gpu-eval "$MODEL" --report r.json --device cpu --tokens 256 --out e.json
check "gpu-eval: same input, same output bytes" cmp -s e.json e1.json
run gpu-eval "$MODEL" --report r.json --device cpu --tokens 256 --seed 5 --out e5.json
check "gpu-eval: another --seed draws other tokens" \
    [ "$(jq_py 'o["tensors"][0]["err_perm"]' e5.json)" != "$(jq_py 'o["tensors"][0]["err_perm"]' e1.json)" ]

run gpu-eval "$MODEL" --all --report r.json --device cpu --tokens 256 --out all.json
check "gpu-eval --all: exit 0" [ "$rc" -eq 0 ]
check "gpu-eval --all: 22 linear weights (embedding left out, lm_head in)" \
    [ "$(jq_py 'len(o["tensors"])' all.json),$(jq_py 'sum("embed" in t["tensor"] for t in o["tensors"])' all.json),$(jq_py 'sum(t["tensor"] == "lm_head.weight" for t in o["tensors"])' all.json)" = "22,0,1" ]
check "gpu-eval --all: unpermuted tensors have err_perm == err_identity" \
    [ "$(jq_py 'all(t["err_perm"] == t["err_identity"] for t in o["tensors"] if not t["permuted"])' all.json)" = True ]
check "gpu-eval --all: the consumers' rows are those of --report alone" \
    [ "$(python3 -c '
import json, sys
a = {t["tensor"]: t for t in json.load(open("all.json"))["tensors"]}
print(all(a[t["tensor"]]["err_perm"] == t["err_perm"] for t in json.load(open("e1.json"))["tensors"]))')" = True ]
run gpu-eval "$MODEL" --all --device cpu --tokens 64
check "gpu-eval --all without a report: identity only" eval '[ "$rc" -eq 0 ] && grep -q "lowers it on 0" out.txt'

# one layer: the same numbers as the checkpoint row of that tensor
python3 - "$MODEL" <<'EOF' || bad "write down_proj as .npy"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
t = h["model.layers.0.mlp.down_proj.weight"]
b, e = t["data_offsets"]
data = raw[8 + n + b:8 + n + e]
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % tuple(t["shape"])
hdr = hdr + " " * (128 - 10 - len(hdr) - 1) + "\n"
open("w.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data)
r = json.load(open("r.json"))
perm = [s for s in r["spaces"] if s["name"] == "model.layers.0.mlp"][0]["perm"]
ph = "{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }" % len(perm)
ph = ph + " " * (128 - 10 - len(ph) - 1) + "\n"
open("p.npy", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(ph)) + ph.encode() +
                          struct.pack("<%dq" % len(perm), *perm))
EOF
run gpu-eval w.npy --perm p.npy --device cpu --tokens 256 --out one.json
check "gpu-eval W.npy --device cpu: exit 0, JSON on stdout" eval '[ "$rc" -eq 0 ] && [[ $out == "{"* ]]'
check "gpu-eval W.npy: the checkpoint row's errors" \
    [ "$(python3 -c '
import json
one = json.load(open("one.json"))
row = [t for t in json.load(open("e1.json"))["tensors"] if t["tensor"] == "model.layers.0.mlp.down_proj.weight"][0]
print(one["err_perm"] == row["err_perm"] and one["err_identity"] == row["err_identity"])')" = True ]
run gpu-eval w.npy --perm p.npy --device cpu --tokens 256 --report old.json
check "gpu-eval W.npy --report (the old name of --out)" cmp -s old.json one.json

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
