#!/usr/bin/env bash
# tests/fuzz/run.sh: builds the libFuzzer harnesses (clang, -fsanitize=fuzzer,address,undefined)
# and runs them. The library sources are the lists of src/{core,io,model}/meson.build and
# solvers/meson.build (GLPK solvers included) plus gpu/nmp_device.c (device selection),
# so the harnesses never drift from the build.
#
# usage: tests/fuzz/run.sh build              build into build-fuzz/ (or $FUZZ_BUILD)
#        tests/fuzz/run.sh regress            replay tests/fuzz/regress/<name>/* and the corpora
#        tests/fuzz/run.sh run SECONDS [NAME]  fuzz each harness (or NAME) SECONDS from its corpus
#        tests/fuzz/run.sh long RUNS NAME [ARGS]  fuzz NAME for RUNS executions (-runs), stats
#                                             at the end; ARGS go to libFuzzer (-max_total_time=S)
# Needs clang and libclang-rt-14-dev (Debian 12; .ci/setup installs them) and libjansson-dev.
# Findings land in $FUZZ_BUILD/findings/<name>/ (crash-*, leak-*, timeout-*); each one becomes a
# file in tests/fuzz/regress/<name>/ plus a fix. New inputs that grow coverage go to a scratch
# corpus in $FUZZ_BUILD, never into the committed corpus (tests/fuzz/gen_corpus.py makes that).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${FUZZ_BUILD:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
names=(safetensors npy plan)

sources() {  # the 'nmp_*.c' entries of a layer's meson.build (src/LAYER or a top folder)
    local dir=$root/src/$1
    [ -d "$dir" ] || dir=$root/$1
    sed -n "s/^ *'\(nmp_[a-z0-9_]*\.c\)',*$/\1/p" "$dir/meson.build" | sed "s|^|$dir/|"
}

build() {
    mkdir -p "$out/obj"
    local flags=(-std=c17 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer
                 -fsanitize=address,undefined -fno-sanitize-recover=all
                 -Wall -Wextra -Werror
                 -I"$root/include" -I"$root/src/core" -I"$root/src/io" -I"$root/src/model"
                 -I"$root/solvers" -I"$root/gpu"
                 -DNMP_HAVE_GLPK=1)
    local jansson
    jansson=$(pkg-config --cflags --libs jansson)
    local objs=() src obj
    for layer in core io model solvers; do
        for src in $(sources $layer); do
            obj=$out/obj/$layer-$(basename "${src%.c}").o
            if [ ! -e "$obj" ] || [ "$src" -nt "$obj" ] || [ "$0" -nt "$obj" ]; then
                $cc "${flags[@]}" -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
            fi
            objs+=("$obj")
        done
    done
    obj=$out/obj/gpu-nmp_device.o
    if [ ! -e "$obj" ] || [ "$root/gpu/nmp_device.c" -nt "$obj" ] || [ "$0" -nt "$obj" ]; then
        $cc "${flags[@]}" -fsanitize=fuzzer-no-link -c "$root/gpu/nmp_device.c" -o "$obj"
    fi
    objs+=("$obj")
    [ ${#objs[@]} -gt 10 ] || { echo "run.sh: library source lists not found" >&2; exit 1; }
    local ckpt=$root/instances/tiny_llama/model.safetensors
    for n in "${names[@]}"; do
        # shellcheck disable=SC2086
        $cc "${flags[@]}" -fsanitize=fuzzer -DFUZZ_CKPT="\"$ckpt\"" \
            "$root/tests/fuzz/fuzz_$n.c" "${objs[@]}" $jansson -lglpk -lm -o "$out/fuzz_$n"
    done
    echo "run.sh: built ${names[*]/#/$out/fuzz_} from ${#objs[@]} library sources"
}

need_built() {
    for n in "${names[@]}"; do
        [ -x "$out/fuzz_$n" ] || { echo "run.sh: run 'tests/fuzz/run.sh build' first" >&2; exit 1; }
    done
}

# leaks are findings; a UBSan report stops the run (-fno-sanitize-recover)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

regress() {
    need_built
    local n dirs
    for n in "${names[@]}"; do
        dirs=("$root/tests/fuzz/corpus/$n")
        [ -d "$root/tests/fuzz/regress/$n" ] && dirs+=("$root/tests/fuzz/regress/$n")
        # replay every file once (no mutation)
        local files=()
        mapfile -t files < <(find "${dirs[@]}" -type f | sort)
        "$out/fuzz_$n" -runs=0 "${files[@]}" >"$out/regress-$n.log" 2>&1 ||
            { cat "$out/regress-$n.log" >&2; echo "run.sh: $n regression FAILED" >&2; exit 1; }
        echo "run.sh: $n: ${#files[@]} inputs replayed, no finding"
    done
}

fuzz() {  # fuzz NAME extra-libFuzzer-args...
    local n=$1
    shift
    mkdir -p "$out/scratch/$n" "$out/findings/$n"
    # -max_len: the largest seed (libFuzzer's default is the same, stated here for the record)
    "$out/fuzz_$n" "$out/scratch/$n" "$root/tests/fuzz/corpus/$n" \
        -artifact_prefix="$out/findings/$n/" -print_final_stats=1 -rss_limit_mb=2048 \
        -timeout=10 "$@"
}

case ${1:-} in
    build) build ;;
    regress) regress ;;
    run)
        need_built
        secs=${2:?seconds}
        for n in ${3:-${names[@]}}; do
            fuzz "$n" -max_total_time="$secs" >"$out/run-$n.log" 2>&1 ||
                { tail -60 "$out/run-$n.log" >&2; echo "run.sh: $n FOUND SOMETHING" >&2; exit 1; }
            echo "run.sh: $n: $(grep -o 'stat::number_of_executed_units: *[0-9]*' \
                "$out/run-$n.log" | grep -o '[0-9]*$') executions in ${secs} s, no finding"
        done ;;
    long)
        need_built
        runs=${2:?runs}
        n=${3:?name}
        shift 3
        fuzz "$n" -runs="$runs" "$@" ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
