#!/usr/bin/env bash
# gpu/check.sh: the one GPU check for a short lease (H100/H200, CUDA 13, under 8 minutes). Builds
# the core plus gpu/ straight with gcc and nvcc (no Meson or cmocka; the source lists are read from
# the meson.build files Meson uses), then prints one table:
#   1. nmp_gpu_check: every GPU backend entry against the CPU reference, the device's layer error
#      columns against nmp_layer_error, scoring / window / pricing timings (CPU vs GPU: the seam a
#      device search would use), and cuSPARSELt 2:4 vs dense cuBLASLt over LLM shapes (256 and
#      4096 tokens x 4096x4096, 4096x11008, 11008x4096; 8192^3; 16384x8192x8192) in
#      fp16/bf16/int8/e4m3, with the split-K and workspace sizes the search kept. A row that
#      loses the CUDA context is reported as FAULT and the table goes on in a fresh process.
#   2. the checkpoint evaluation of the bundled tiny LLaMA: nmperm permute, then nmperm gpu-eval
#      --all on the device and with --device cpu; the error columns must agree. Needs jansson
#      (the CLI reads JSON): the system's, or libjansson4 + libjansson-dev .deb files in
#      $NMP_DEBS (default gpu/.debs; make them on a machine with apt: gpu/check.sh --fetch-debs,
#      and carry that folder). Without it this part is skipped, said in one line.
#   3. gpu/search.sh: osg's windows and auto's first stage on the device against CPU auto with a
#      60-s limit on every core at 4096^2 and 8192^2, and the LP bound of 256x256 with its pricing
#      on the device (needs GLPK: the system's, or libglpk .deb files in $NMP_DEBS, also fetched
#      by --fetch-debs). `gpu/check.sh --search` runs the build and this part alone.
# cuBLASLt and cuSPARSELt are loaded at run time (the search order of nmp_gpu_libs_load);
# cuSPARSELt's header comes from the nvidia-cusparselt-cu13 wheel, installed with pip if missing.
# Usage: gpu/check.sh [--quick | --search]; OUT=dir keeps the log there. Exit: 0 pass, 1 fail, 77 no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fetch-debs" ]; then
    mkdir -p gpu/.debs && (cd gpu/.debs && apt-get download libjansson4 libjansson-dev \
        libglpk40 libglpk-dev libamd2 libcolamd2 libsuitesparseconfig5 libltdl7 libgmp10)
    exit
fi
only_search=false
if [ "${1:-}" = "--search" ]; then
    only_search=true
    shift
fi
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
CUDA_ROOT=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
B=${B:-${TMPDIR:-/tmp}/nmperm-gpucheck}
mkdir -p "$B"
t0=$(date +%s)
LOG=${OUT:+$OUT/gpu_check.txt}
LOG=${LOG:-$B/gpu_check.txt}
: >"$LOG"
say() { echo "$@" | tee -a "$LOG"; }

probe='
import glob, os, site, sys
dirs = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
print(":".join(d for d in dirs if d and ":" not in d))
for d in dirs:
    for r in (os.path.join(d, "nvidia", "cusparselt"), os.path.join(d, "nvidia", "cu13")):
        if os.path.isfile(os.path.join(r, "include", "cusparseLt.h")):
            print(r); raise SystemExit
'
csl=$(python3 -c "$probe" || true)
if [ "$(echo "$csl" | wc -l)" -lt 2 ]; then
    python3 -m pip install -q nvidia-cusparselt-cu13 >&2 || true
    csl=$(python3 -c "$probe" || true)
fi
site=$(echo "$csl" | sed -n 1p)
cflags=(-O2 -std=c17 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -DNMP_HAVE_CUDA=1 -Iinclude -Isrc/core
        -Isrc/io -Isrc/model -Isolvers -Igpu -I"$CUDA_ROOT/include" "-DNMP_BUILD_SITE=\"$site\""
        -fopenmp)
cuflags=(-O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
         -DNMP_HAVE_CUDA=1 -Iinclude -Isrc/core -Igpu)
# no GPU library is linked: static cudart; cuBLASLt and cuSPARSELt are dlopen'ed at first use
libs=("$CUDA_ROOT/lib64/libcudart_static.a" -ldl -lrt -lpthread -lstdc++ -lm -fopenmp)
if [ "$(echo "$csl" | wc -l)" -ge 2 ]; then
    cuflags+=(-DNMP_HAVE_CUSPARSELT=1 -I"$(echo "$csl" | sed -n 2p)/include")
else
    say "# gpu/check.sh: cuSPARSELt header not found: the sparse GEMM table is skipped"
fi

# the lists Meson compiles
list() { # list FILE BLOCK: the quoted .c files of `BLOCK = files(...)` in FILE
    sed -n "/^$2 = files(/,/^)/p" "$1" | grep -o "'[a-z0-9_/]*\\.c'" | tr -d "'"
}
mapfile -t core < <(list src/core/meson.build core_sources | sed 's|^|src/core/|')
mapfile -t io < <(list src/io/meson.build io_sources | sed 's|^|src/io/|')
mapfile -t model < <(list src/model/meson.build model_sources | sed 's|^|src/model/|')
mapfile -t solvers < <(list solvers/meson.build solver_sources | sed 's|^|solvers/|')
mapfile -t cli < <(list meson.build cli_sources)
[ "${#core[@]}" -gt 5 ] || { echo "gpu/check.sh: no core sources in src/core/meson.build" >&2; exit 1; }

compile() { # compile OUTLIST SRC...: objects into $B, names into the array OUTLIST
    local -n outs=$1
    shift
    for f in "$@"; do
        local o="$B/$(echo "$f" | tr / _).o"
        gcc "${cflags[@]}" "${extra[@]}" -c "$f" -o "$o" & outs+=("$o")
    done
}
extra=()
objs=()
compile objs "${core[@]}" gpu/nmp_device.c gpu/nmp_gpu.c gpu/nmp_gpu_dl.c
"$NVCC" "${cuflags[@]}" -c gpu/nmp_gpu_kernels.cu -o "$B/kernels.o" & objs+=("$B/kernels.o")
"$NVCC" "${cuflags[@]}" -c gpu/nmp_cusparselt.cu -o "$B/cusparselt.o" & objs+=("$B/cusparselt.o")
chk=()
compile chk gpu/nmp_gpu_check.c

# jansson for the CLI: the system's, or unpacked from .deb files
jinc=() jlib=()
debs=${NMP_DEBS:-gpu/.debs}
if [ -f /usr/include/jansson.h ] || pkg-config --exists jansson 2>/dev/null; then
    jlib=(-ljansson)
elif ls "$debs"/libjansson*.deb >/dev/null 2>&1; then
    for d in "$debs"/libjansson*.deb; do dpkg -x "$d" "$B/deps"; done
    jdir=$(dirname "$(find "$B/deps" -name 'libjansson.so*' | head -n 1)")
    ln -sf "$(find "$B/deps" -name 'libjansson.so.4*' | head -n 1)" "$jdir/libjansson.so"
    jinc=(-I"$B/deps/usr/include") jlib=(-L"$jdir" -Wl,-rpath,"$jdir" -ljansson)
fi
# GLPK for colgen (the LP bound of part 3): the system's, or the .deb files beside jansson's
ginc=() glib=()
if [ -f /usr/include/glpk.h ]; then
    glib=(-lglpk)
elif ls "$debs"/libglpk*.deb >/dev/null 2>&1; then
    for d in "$debs"/lib{glpk,amd,colamd,suitesparseconfig,ltdl,gmp}*.deb; do
        [ -e "$d" ] && dpkg -x "$d" "$B/deps"
    done
    gdir=$(dirname "$(find "$B/deps" -name 'libglpk.so.40*' | head -n 1)")
    ln -sf "$(find "$B/deps" -name 'libglpk.so.40*' | head -n 1)" "$gdir/libglpk.so"
    ginc=(-I"$B/deps/usr/include")
    glib=(-L"$gdir" -Wl,-rpath,"$gdir" -lglpk)
    for l in amd colamd suitesparseconfig ltdl gmp; do # GLPK's own dependencies, found by rpath
        f=$(find "$B/deps" -name "lib$l.so.*" | head -n 1)
        [ -n "$f" ] && glib+=(-Wl,-rpath,"$(dirname "$f")")
    done
fi
cliobjs=()
if [ "${#jlib[@]}" -gt 0 ]; then
    extra=("${jinc[@]}")
    if [ "${#glib[@]}" -gt 0 ]; then
        mapfile -t glpk < <(list solvers/meson.build glpk_sources | sed 's|^|solvers/|')
        extra+=("${ginc[@]}" -DNMP_HAVE_GLPK=1)
        solvers+=("${glpk[@]}")
    else
        say "# no GLPK (system or $debs): the LP bound of part 3 is skipped"
    fi
    compile cliobjs "${io[@]}" "${model[@]}" "${solvers[@]}" "${cli[@]}"
fi
wait
gcc -o "$B/nmp_gpu_check" "${objs[@]}" "${chk[@]}" "${libs[@]}"
if [ "${#cliobjs[@]}" -gt 0 ]; then
    gcc -o "$B/nmperm" "${objs[@]}" "${cliobjs[@]}" "${jlib[@]}" "${glib[@]}" "${libs[@]}"
fi
say "# built in $(( $(date +%s) - t0 )) s; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

# 1. backend, layer errors, timings, GEMM table; after a FAULT (exit 3) the rest of the table in a
# fresh process
rc=0
if $only_search; then
    nvidia-smi -L >/dev/null 2>&1 || { say "# gpu/check.sh --search: no GPU"; exit 77; }
    T=$B/search timeout "${SEARCH_SECONDS:-330}" gpu/search.sh "$B/nmperm" "$LOG" || rc=1
    say "# gpu/check.sh --search: exit $rc after $(( $(date +%s) - t0 )) s"
    exit $rc
fi
set +e
timeout 360 "$B/nmp_gpu_check" "$@" | tee -a "$LOG"
rc=${PIPESTATUS[0]}
while [ "$rc" -eq 3 ]; do
    next=$(grep -o -- '--from [0-9]*' "$LOG" | tail -n 1 | cut -d' ' -f2)
    timeout 240 "$B/nmp_gpu_check" "$@" --from "$next" | tee -a "$LOG"
    r2=${PIPESTATUS[0]}
    rc=$([ "$r2" -eq 3 ] && echo 3 || echo 1) # a FAULT row is a failure
done
set -e
[ "$rc" -eq 77 ] && exit 77

# 2. the tiny LLaMA checkpoint on the device and on the CPU reference
if [ -x "$B/nmperm" ]; then
    M=instances/tiny_llama/model.safetensors
    T=$B/tiny
    mkdir -p "$T"
    set +e
    "$B/nmperm" permute "$M" -o "$T/permuted.safetensors" --report "$T/r.json" >/dev/null 2>"$T/err"
    p=$?
    "$B/nmperm" gpu-eval "$M" --report "$T/r.json" --all --tokens 256 --reps 10 --warmup 3 \
        --out "$T/gpu.json" | tee -a "$LOG"
    g=${PIPESTATUS[0]}
    "$B/nmperm" gpu-eval "$M" --report "$T/r.json" --all --tokens 256 --device cpu \
        --out "$T/cpu.json" >/dev/null
    c=$?
    python3 - "$T/gpu.json" "$T/cpu.json" <<'EOF' | tee -a "$LOG"
import json, sys
g = {t["tensor"]: t for t in json.load(open(sys.argv[1]))["tensors"]}
c = {t["tensor"]: t for t in json.load(open(sys.argv[2]))["tensors"]}
worst, n = 0.0, 0
for name, t in g.items():
    if t.get("errors_from") == "gpu":
        n += 1
        for key in ("err_identity", "err_perm"):
            worst = max(worst, abs(t[key] - c[name][key]) / max(c[name][key], 1e-30))
print("# tiny_llama: %d tensors timed on the device; error columns gpu vs cpu: max rel diff %.2e %s"
      % (n, worst, "ok" if n and worst <= 1e-4 else "FAIL"))
sys.exit(0 if n and worst <= 1e-4 else 1)
EOF
    q=${PIPESTATUS[0]}
    set -e
    if [ "$p" -ne 0 ] || [ "$g" -ne 0 ] || [ "$c" -ne 0 ] || [ "$q" -ne 0 ]; then
        say "# tiny_llama checkpoint evaluation: FAIL (permute $p, gpu-eval $g, cpu $c, compare $q)"
        rc=1
    fi
else
    say "# tiny_llama checkpoint evaluation skipped: no jansson (gpu/check.sh --fetch-debs on a machine with apt, carry gpu/.debs)"
fi

# 3. the search on the device against the CPU (gpu/search.sh; --quick: skipped)
if [ -x "$B/nmperm" ] && [ "${1:-}" != "--quick" ]; then
    T=$B/search timeout "${SEARCH_SECONDS:-330}" gpu/search.sh "$B/nmperm" "$LOG" || rc=1
fi
say "# gpu/check.sh: exit $rc after $(( $(date +%s) - t0 )) s"
exit $rc
