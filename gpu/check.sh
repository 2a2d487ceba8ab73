#!/usr/bin/env bash
# gpu/check.sh: the GPU check for a short lease (H100/H200, CUDA 13, under 8 minutes): builds
# the core it needs plus gpu/ straight with gcc and nvcc (no Meson, GLPK, jansson or cmocka
# needed; the core's source list is read from src/core/meson.build, the one Meson builds), runs nmp_gpu_check (every GPU backend entry against the CPU reference, scoring and
# pricing timings, cuSPARSELt 2:4 vs dense cuBLAS over LLM shapes in fp16/bf16/int8/e4m3) and
# prints one table. Installs the cuSPARSELt wheel with pip when it is missing.
# Usage: gpu/check.sh [--quick]; OUT=dir keeps the log there. Exit: 0 pass, 1 fail, 77 no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
B=${B:-${TMPDIR:-/tmp}/nmperm-gpucheck}
mkdir -p "$B"
t0=$(date +%s)

probe='
import glob, os, site
for d in list(site.getsitepackages()) + [site.getusersitepackages()]:
    for r in (os.path.join(d, "nvidia", "cusparselt"), os.path.join(d, "nvidia", "cu13")):
        libs = sorted(glob.glob(os.path.join(r, "lib", "libcusparseLt.so*")))
        if os.path.isfile(os.path.join(r, "include", "cusparseLt.h")) and libs:
            print(r); print(libs[0]); raise SystemExit
'
csl=$(python3 -c "$probe" || true)
if [ -z "$csl" ]; then
    python3 -m pip install -q nvidia-cusparselt-cu13 >&2 || true
    csl=$(python3 -c "$probe" || true)
fi
cflags=(-O2 -std=c17 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -DNMP_HAVE_CUDA=1 -Iinclude -Isrc/core
        -Igpu -I/usr/local/cuda/include)
cuflags=(-O3 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
         -DNMP_HAVE_CUDA=1 -Iinclude -Isrc/core -Igpu)
libs=(-L/usr/local/cuda/lib64 -lcudart -lcublas -lcublasLt -lstdc++ -lm)
if [ -n "$csl" ]; then
    root=$(echo "$csl" | sed -n 1p); lib=$(echo "$csl" | sed -n 2p)
    cuflags+=(-DNMP_HAVE_CUSPARSELT=1 -I"$root/include")
    libs+=("$lib" -Wl,-rpath,"$(dirname "$lib")")
else
    echo "gpu/check.sh: cuSPARSELt not found: the sparse GEMM table is skipped" >&2
fi

# the same list Meson compiles: every quoted .c of src/core/meson.build
mapfile -t core < <(sed -n "s/^ *'\\(nmp_[a-z0-9_]*\\.c\\)',*$/\\1/p" src/core/meson.build)
[ "${#core[@]}" -gt 5 ] || { echo "gpu/check.sh: no core sources in src/core/meson.build" >&2; exit 1; }
objs=()
for f in "${core[@]}" ../../gpu/nmp_device.c; do
    o="$B/$(basename "$f" .c).o"
    gcc "${cflags[@]}" -c "src/core/$f" -o "$o" & objs+=("$o")
done
gcc "${cflags[@]}" -c gpu/nmp_gpu.c -o "$B/nmp_gpu.o" & objs+=("$B/nmp_gpu.o")
gcc "${cflags[@]}" -c gpu/nmp_gpu_check.c -o "$B/nmp_gpu_check.o" & objs+=("$B/nmp_gpu_check.o")
"$NVCC" "${cuflags[@]}" -c gpu/nmp_gpu_kernels.cu -o "$B/kernels.o" & objs+=("$B/kernels.o")
"$NVCC" "${cuflags[@]}" -c gpu/nmp_cusparselt.cu -o "$B/cusparselt.o" & objs+=("$B/cusparselt.o")
wait
gcc -o "$B/nmp_gpu_check" "${objs[@]}" "${libs[@]}" -fopenmp
echo "# built in $(( $(date +%s) - t0 )) s; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo 'no nvidia-smi')"

rc=0
if [ -n "${OUT:-}" ]; then
    timeout 420 "$B/nmp_gpu_check" "$@" | tee "$OUT/gpu_check.txt" || rc=${PIPESTATUS[0]}
else
    timeout 420 "$B/nmp_gpu_check" "$@" || rc=$?
fi
echo "# gpu/check.sh: exit $rc after $(( $(date +%s) - t0 )) s"
exit $rc
