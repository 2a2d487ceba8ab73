#!/usr/bin/env bash
# gpu/search.sh: the search on the device against the CPU, in one run on one machine (part 3 of
# gpu/check.sh; runs anywhere with DEVICE=ref, slowly, to check the script itself).
#   1. agreement: osg (no escapes) with its windows on DEVICE vs on the CPU reference: the same
#      moves, so the same kept score (float sums may break a tie differently: within 1e-6);
#   2. per size n in SIZES (|N(0,1)| n x n, seed 1): CPU auto with a CPU_SECONDS limit on every
#      core (the efficacy to beat), osg with its windows on DEVICE to convergence + 100 escapes,
#      and auto with its device stage limited to a tenth of CPU_SECONDS: does it reach the CPU's
#      efficacy 10x sooner?
#   3. the LP bound (colgen) of an LP_N x LP_N instance with its pricing on DEVICE, limit
#      LP_SECONDS: complete or not, seconds, rounds.
# usage: gpu/search.sh NMPERM [LOG]   env: DEVICE (gpu), SIZES ("4096 8192"), CPU_SECONDS (60),
#        LP_N (256), LP_SECONDS (60), T (scratch folder). Exit 0, or 1 when a run failed or the
#        agreement check did not hold (a slower device is reported, not failed).
set -uo pipefail
N=${1:?usage: gpu/search.sh NMPERM [LOG]}
LOG=${2:-/dev/null}
DEV=${DEVICE:-gpu}
SIZES=${SIZES:-"4096 8192"}
CPU_SECONDS=${CPU_SECONDS:-60}
LP_N=${LP_N:-256}
LP_SECONDS=${LP_SECONDS:-60}
T=${T:-${TMPDIR:-/tmp}/nmperm-search}
threads=$(nproc)
mkdir -p "$T"
rc=0
say() { echo "$@" | tee -a "$LOG"; }
field() { # field FILE KEY: a top-level value of a JSON file
    python3 -c 'import json, sys; v = json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}
solve() { # solve OUT.json ARGS...: nmperm solve --json; a failure is one line and rc 1
    local out=$1
    shift
    if ! "$N" solve "$@" --json >"$out" 2>"$out.err"; then
        say "# FAIL: nmperm solve $*: $(head -c 300 "$out.err")"
        rc=1
        return 1
    fi
}

say "# search on the device ($DEV) vs the CPU ($threads threads), $(date -u +%Y-%m-%dT%H:%MZ)"
# 1. agreement
"$N" gen -o "$T/w256.npy" --rows 256 --cols 256 --seed 1 >/dev/null
if solve "$T/a_dev.json" "$T/w256.npy" --solver osg --param escapes=0 --device "$DEV" &&
    solve "$T/a_ref.json" "$T/w256.npy" --solver osg --param escapes=0 --device ref; then
    a=$(field "$T/a_dev.json" kept) b=$(field "$T/a_ref.json" kept)
    ok=$(python3 -c "print('ok' if abs($a - $b) <= 1e-6 * abs($b) else 'FAIL')")
    say "$(printf '# agreement 256x256 osg escapes=0: %s %.4f (%.3f s) vs ref %.4f (%.3f s): %s' \
        "$DEV" "$a" "$(field "$T/a_dev.json" seconds)" "$b" "$(field "$T/a_ref.json" seconds)" "$ok")"
    [ "$ok" = ok ] || rc=1
fi

# 2. sizes
say "$(printf '# %-6s %-30s %9s %9s %s' n run efficacy seconds note)"
for n in $SIZES; do
    w=$T/w$n.npy
    "$N" gen -o "$w" --rows "$n" --cols "$n" --seed 1 >/dev/null || { say "# FAIL: gen $n"; rc=1; continue; }
    solve "$T/cpu$n.json" "$w" --solver auto --time-limit "$CPU_SECONDS" --threads "$threads" || continue
    e_cpu=$(field "$T/cpu$n.json" efficacy_pct)
    say "$(printf '  %-6s %-30s %9.3f %9.2f' "$n" "cpu auto --time-limit $CPU_SECONDS" "$e_cpu" \
        "$(field "$T/cpu$n.json" seconds)")"
    if solve "$T/osg$n.json" "$w" --solver osg --device "$DEV" --time-limit 300; then
        say "$(printf '  %-6s %-30s %9.3f %9.2f %s' "$n" "osg --device $DEV" \
            "$(field "$T/osg$n.json" efficacy_pct)" "$(field "$T/osg$n.json" seconds)" \
            "$(field "$T/osg$n.json" status)")"
    fi
    short=$(python3 -c "print($CPU_SECONDS / 10)")
    if solve "$T/auto$n.json" "$w" --solver auto --device "$DEV" --time-limit "$short" \
        --threads "$threads"; then
        e=$(field "$T/auto$n.json" efficacy_pct)
        note=$(python3 -c "print('reaches the CPU efficacy 10x sooner' if $e >= $e_cpu else 'below the CPU efficacy (%.3f)' % $e_cpu)")
        say "$(printf '  %-6s %-30s %9.3f %9.2f %s' "$n" "auto --device $DEV --time-limit $short" \
            "$e" "$(field "$T/auto$n.json" seconds)" "$note")"
    fi
done

# 3. the LP bound
"$N" gen -o "$T/lp.npy" --rows "$LP_N" --cols "$LP_N" --seed 1 >/dev/null
if "$N" bound "$T/lp.npy" --device "$DEV" --time-limit "$LP_SECONDS" --threads "$threads" --json \
    >"$T/lp.json" 2>"$T/lp.err"; then
    say "$(printf '# LP bound %dx%d, pricing on %s: %s after %.1f s, %s rounds, bound %s (%s)' \
        "$LP_N" "$LP_N" "$DEV" "$( [ "$(field "$T/lp.json" lp_complete)" = True ] && echo complete || echo incomplete)" \
        "$(field "$T/lp.json" lp_seconds)" "$(field "$T/lp.json" lp_rounds)" \
        "$(field "$T/lp.json" bound)" "$(field "$T/lp.json" bound_kind)")"
else
    say "# FAIL: nmperm bound --device $DEV: $(head -c 300 "$T/lp.err")"
    rc=1
fi
exit $rc
