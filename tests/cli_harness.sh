# cli_harness.sh: the shared helpers of the CLI tests (sourced by tests/test_cli*.sh)
#
# Every check is `check NAME 'CONDITION'`: CONDITION is one string, evaluated whole, so each part
# of `a && b && c` counts. A call with more than one condition argument is itself a failure (the
# shell would have split `check N [ a ] && [ b ]` into a check of `[ a ]` and an unchecked `b`).
# The reference scores (nm_ref) come from awk on od's dump of the .npy: a second implementation
# that shares no code with nmperm. Needs bash, coreutils and awk; python3 only where named.

passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1${2:+: $2}"; failed=$((failed + 1)); }

# check NAME 'CONDITION': passes when eval CONDITION succeeds
check() {
    if [ "$#" -ne 2 ]; then
        bad "$1" "check takes a name and one quoted condition, got $(($# - 1)) arguments"
    elif eval "$2"; then
        ok "$1"
    else
        bad "$1" "$2"
    fi
}

# run ARGS...: runs nmperm with stdout in $out, stderr in $err, exit code in $rc
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

# close A B TOL: |A - B| <= TOL (both numbers)
close() {
    awk -v a="$1" -v b="$2" -v t="$3" \
        'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'
}

# le A B TOL: A <= B + TOL
le() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { exit !(a != "" && b != "" && a + 0 <= b + t) }'
}

# is_json FILE: one valid JSON object (python3 when present, else its shape)
is_json() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import json, sys; o = json.load(open(sys.argv[1])); sys.exit(not isinstance(o, dict))' "$1"
    else
        [ "$(head -c 1 "$1")" = "{" ] && grep -q '}$' "$1"
    fi
}

# npy FILE DESCR SHAPE: writes a .npy header (version 1.0, 128-byte aligned); data is appended
npy() {
    local header="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
    printf '\x93NUMPY\x01\x00\x76\x00' >"$1"
    printf '%-117s\n' "$header" >>"$1"
}

# npy_values FILE TYPE: the values of a version-1 .npy, one per line, in C order; TYPE is od's
# (f4 for '<f4', d8 for '<i8'); fails on another layout
npy_values() {
    local hl descr
    [ "$(head -c 6 "$1" | tail -c 5)" = NUMPY ] || return 1
    hl=$(od -An -t u2 -j 8 -N 2 "$1" | tr -d ' ')
    case $2 in f4) descr="'<f4'" ;; d8) descr="'<i8'" ;; *) return 1 ;; esac
    head -c $((10 + hl)) "$1" | grep -q "'descr': $descr, 'fortran_order': False" || return 1
    od -An -v -t "$2" -j $((10 + hl)) "$1" | tr -s ' ' '\n' | grep -v '^$'
}

# nm_ref W.npy ROWS COLS N M [P.npy]: prints "identity row_bound optimum kept", computed in awk:
# identity and kept (of permutation P, else identity) sum the top N of every group of M columns
# over all rows; row_bound sums the top COLS*N/M of every row; optimum tries every partition of
# the columns into groups (only for COLS <= 12, else "-").
nm_ref() {
    local perm=/dev/null
    if [ -n "${6:-}" ]; then
        perm=$(mktemp) || return 1
        npy_values "$6" d8 >"$perm" || { rm -f "$perm"; return 1; }
    fi
    npy_values "$1" f4 | awk -v R="$2" -v C="$3" -v N="$4" -v M="$5" -v P="$perm" '
    # top N of x[1..len], summed (insertion sort, decreasing)
    function topsum(x, len, n,   a, b, t, s) {
        for (a = 2; a <= len; a++) {
            t = x[a]
            for (b = a - 1; b >= 1 && x[b] < t; b--) x[b + 1] = x[b]
            x[b + 1] = t
        }
        s = 0
        for (a = 1; a <= n; a++) s += x[a]
        return s
    }
    # sum over rows of the top N of the columns g[1..M]
    function group(g,   j, t, x, s) {
        s = 0
        for (j = 0; j < R; j++) {
            for (t = 1; t <= M; t++) x[t] = v[j * C + g[t]]
            s += topsum(x, M, N)
        }
        return s
    }
    # every partition: the lowest free column opens group d, M-1 free columns join it
    function part(d, acc,   u) {
        for (u = 0; u < C && used[u]; u++) ;
        if (u == C) { if (acc > best) best = acc; return }
        used[u] = 1; cur[d, 1] = u
        join(d, 2, u + 1, acc)
        used[u] = 0
    }
    function join(d, t, from, acc,   i, key, k, g) {
        if (t > M) {
            key = ""
            for (k = 1; k <= M; k++) { g[k] = cur[d, k]; key = key "," g[k] }
            if (!(key in D)) D[key] = group(g)
            part(d + 1, acc + D[key])
            return
        }
        for (i = from; i < C; i++)
            if (!used[i]) { used[i] = 1; cur[d, t] = i; join(d, t + 1, i + 1, acc); used[i] = 0 }
    }
    { v[NR - 1] = $1 + 0 }
    END {
        if (NR != R * C) { print "nm_ref: " NR " values, expected " R * C > "/dev/stderr"; exit 1 }
        np = 0
        while ((getline line < P) > 0) perm[np++] = line + 0
        if (np == 0) for (i = 0; i < C; i++) perm[i] = i
        else if (np != C) { print "nm_ref: permutation of " np " entries" > "/dev/stderr"; exit 1 }
        ident = 0; kept = 0; rb = 0
        for (g = 0; g < C / M; g++) {
            for (t = 1; t <= M; t++) gi[t] = g * M + t - 1
            ident += group(gi)
            for (t = 1; t <= M; t++) gi[t] = perm[g * M + t - 1]
            kept += group(gi)
        }
        for (j = 0; j < R; j++) {
            for (i = 0; i < C; i++) row[i + 1] = v[j * C + i]
            rb += topsum(row, C, C / M * N)
        }
        opt = "-"
        if (C <= 12) { best = -1; part(1, 0); opt = sprintf("%.4f", best) }
        printf "%.4f %.4f %s %.4f\n", ident, rb, opt, kept
    }'
    local status=$?
    [ "$perm" = /dev/null ] || rm -f "$perm"
    return $status
}

# lp_ref W.npy ROWS COLS N M: the LP relaxation of set partitioning, max sum_S D(S) x_S subject to
# sum_{S ∋ i} x_S = 1 for every column i, x >= 0, over all C(COLS, M) groups S, D(S) = sum over
# rows of the top N of S: a dense two-phase simplex in awk (Bland's rule), for COLS <= 12. A
# second formulation of what colgen computes by column generation, sharing no code with it.
lp_ref() {
    npy_values "$1" f4 | awk -v R="$2" -v C="$3" -v N="$4" -v M="$5" '
    function topsum(x, len, n,   a, b, t, s) {
        for (a = 2; a <= len; a++) {
            t = x[a]
            for (b = a - 1; b >= 1 && x[b] < t; b--) x[b + 1] = x[b]
            x[b + 1] = t
        }
        s = 0
        for (a = 1; a <= n; a++) s += x[a]
        return s
    }
    # the groups: every M-subset of 0..C-1 in lexicographic order, as columns of the tableau
    function subsets(t, from,   i, j, k, x, s) {
        if (t > M) {
            nv++
            s = 0
            for (j = 0; j < R; j++) {
                for (k = 1; k <= M; k++) x[k] = v[j * C + cur[k]]
                s += topsum(x, M, N)
            }
            cost[nv] = s
            for (k = 1; k <= M; k++) A[cur[k] + 1, nv] = 1
            return
        }
        for (i = from; i < C; i++) { cur[t] = i; subsets(t + 1, i + 1) }
    }
    # one phase: maximise obj[] over the tableau T (rows 1..m, columns 1..n, rhs column 0)
    function simplex(n,   r, q, i, j, best, ratio, piv, rc) {
        for (;;) {
            q = 0
            for (j = 1; j <= n; j++) {          # Bland: the first improving column
                if (inbasis[j] || banned[j]) continue
                rc = obj[j]
                for (i = 1; i <= m; i++) rc -= obj[basis[i]] * T[i, j]
                if (rc > 1e-9) { q = j; break }
            }
            if (!q) return
            r = 0
            for (i = 1; i <= m; i++)            # ratio test, ties to the lowest basis index
                if (T[i, q] > 1e-12) {
                    ratio = T[i, 0] / T[i, q]
                    if (!r || ratio < best - 1e-12 || (ratio < best + 1e-12 && basis[i] < basis[r])) {
                        r = i; best = ratio
                    }
                }
            if (!r) { print "lp_ref: unbounded" > "/dev/stderr"; exit 1 }
            piv = T[r, q]
            for (j = 0; j <= n; j++) T[r, j] /= piv
            for (i = 1; i <= m; i++)
                if (i != r && T[i, q] != 0) {
                    piv = T[i, q]
                    for (j = 0; j <= n; j++) T[i, j] -= piv * T[r, j]
                }
            inbasis[basis[r]] = 0; basis[r] = q; inbasis[q] = 1
        }
    }
    { v[NR - 1] = $1 + 0 }
    END {
        if (NR != R * C || C > 12) { print "lp_ref: bad input" > "/dev/stderr"; exit 1 }
        nv = 0; subsets(1, 0); m = C
        for (i = 1; i <= m; i++) {              # artificial i: column nv + i, basic in row i
            for (j = 1; j <= nv; j++) T[i, j] = (i, j) in A ? 1 : 0
            for (j = 1; j <= m; j++) T[i, nv + j] = i == j
            T[i, 0] = 1; basis[i] = nv + i; inbasis[nv + i] = 1
        }
        n = nv + m
        for (j = 1; j <= n; j++) obj[j] = j > nv ? -1 : 0
        simplex(n)                              # phase 1: drive the artificials out
        for (j = nv + 1; j <= n; j++) banned[j] = 1
        for (j = 1; j <= n; j++) obj[j] = j > nv ? 0 : cost[j]
        simplex(n)                              # phase 2
        z = 0
        for (i = 1; i <= m; i++) z += obj[basis[i]] * T[i, 0]
        printf "%.4f\n", z
    }'
}
