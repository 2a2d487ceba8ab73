#!/usr/bin/env bash
# test_gpu_libs_hidden.sh: a CUDA build runs every CPU command with no GPU library present.
#   1. nmperm and libnmperm link no GPU library (no NEEDED libcudart/libcublas*/libcusparseLt/
#      libcuda; no RPATH/RUNPATH into site-packages or a CUDA folder): they are loaded at first
#      GPU use (gpu/nmp_gpu_dl.c)
#   2. the CPU suites (tests/test_cli.sh, tests/test_cli_gpu.sh) pass with the GPU libraries
#      hidden: in a private mount namespace (unshare -rm) every libcudart, libcublas, libcublasLt,
#      libcusparseLt and libcuda file found is covered by /dev/null; where namespaces are not
#      allowed, LD_LIBRARY_PATH is cleared and the site-packages list emptied (NMP_PYTHON_SITE=)
#   3. there, a GPU command answers in one line what is missing and how to install it, exit 1
#
# usage: tests/test_gpu_libs_hidden.sh path/to/nmperm path/to/libnmperm.so [source root]
set -u

NMPERM=${1:?usage: test_gpu_libs_hidden.sh path/to/nmperm path/to/libnmperm.so [source root]}
LIB=${2:?usage: test_gpu_libs_hidden.sh path/to/nmperm path/to/libnmperm.so [source root]}
SRC=${3:-$(cd "$(dirname "$0")/.." && pwd)}
passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }

gpu_re='lib(cudart|cublas|cublasLt|cusparseLt|cuda)\.so'
if ! command -v readelf >/dev/null 2>&1; then
    echo "readelf missing: skipped"
    exit 77
fi
for f in "$NMPERM" "$LIB"; do
    dyn=$(readelf -d "$f" 2>/dev/null)
    needed=$(echo "$dyn" | grep NEEDED | grep -E "$gpu_re")
    rpath=$(echo "$dyn" | grep -E 'RPATH|RUNPATH' | grep -E 'site-packages|cuda|nvidia')
    if [ -z "$needed" ] && [ -z "$rpath" ]; then
        ok "$(basename "$f") links no GPU library"
    else
        bad "$(basename "$f") links a GPU library" "$needed $rpath"
    fi
done

# every GPU library file this machine has (real files: a symlink's target hides the link too)
gpu_files() {
    {
        ldconfig -p 2>/dev/null | grep -E "$gpu_re" | sed 's/.*=> //'
        for d in /usr/local/cuda*/lib64 /usr/local/cuda*/lib /usr/local/cuda*/targets/*/lib \
                 /usr/local/lib /usr/lib/x86_64-linux-gnu $(echo "${LD_LIBRARY_PATH:-}" | tr : " "); do
            ls "$d" 2>/dev/null | grep -E "^${gpu_re}" | sed "s|^|$d/|"
        done
        python3 - <<'EOF' 2>/dev/null
import glob, os, site, sys
dirs = list(site.getsitepackages()) + [site.getusersitepackages()] + sys.path
for d in dirs:
    for f in glob.glob(os.path.join(d, "nvidia", "*", "lib", "lib*.so*")):
        print(f)
EOF
    } | while read -r f; do [ -e "$f" ] && readlink -f "$f"; done | sort -u
}

hidden_run() { # hidden_run CMD...: CMD with the GPU libraries hidden
    if unshare -rm true 2>/dev/null; then
        local files
        files=$(gpu_files | tr '\n' ' ')
        unshare -rm bash -c 'for f in $1; do mount --bind /dev/null "$f" || exit 90; done
                             shift; exec env LD_LIBRARY_PATH= NMP_PYTHON_SITE= "$@"' \
            hide "$files" "$@"
    else
        env LD_LIBRARY_PATH= NMP_PYTHON_SITE= NMP_CUSPARSELT= NMP_CUBLASLT= \
            CUDA_HOME=/nonexistent CUDA_PATH=/nonexistent "$@"
    fi
}
if unshare -rm true 2>/dev/null; then
    echo "# hiding $(gpu_files | wc -l) GPU library files in a private mount namespace"
else
    echo "# no mount namespace here: LD_LIBRARY_PATH cleared, site-packages list emptied"
fi

for suite in test_cli.sh test_cli_gpu.sh; do
    hidden_run bash "$SRC/tests/$suite" "$NMPERM" "$SRC" >"${TMPDIR:-/tmp}/hidden.$$.log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        ok "$suite with the GPU libraries hidden ($(tail -n 1 "${TMPDIR:-/tmp}/hidden.$$.log"))"
    else
        bad "$suite with the GPU libraries hidden" "exit $rc: $(grep -m 3 FAIL "${TMPDIR:-/tmp}/hidden.$$.log")"
    fi
    rm -f "${TMPDIR:-/tmp}/hidden.$$.log"
done

hidden_run "$NMPERM" gpu-bench --m 64 --n 64 --k 64 >/dev/null 2>"${TMPDIR:-/tmp}/hidden.$$.err"
rc=$?
err=$(cat "${TMPDIR:-/tmp}/hidden.$$.err")
rm -f "${TMPDIR:-/tmp}/hidden.$$.err"
if [ "$rc" -eq 1 ] && [ "$(echo "$err" | wc -l)" -eq 1 ] &&
    [[ ($err == *"cuSPARSELt"* && $err == *"pip install nvidia-cusparselt-cu"*) ||
       ($err == *"cuBLASLt"* && $err == *"pip install nvidia-cublas"*) ]]; then
    ok "gpu-bench names the missing library and its pip package  [$err]"
elif [ "$rc" -eq 1 ] && ! unshare -rm true 2>/dev/null; then
    ok "gpu-bench: one line, exit 1 (libraries still reachable without namespaces)  [$err]"
else
    bad "gpu-bench with the GPU libraries hidden" "exit $rc: $err"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
