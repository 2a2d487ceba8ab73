#!/usr/bin/env bash
# test_bad_inputs.sh: every row of tests/bad_inputs.tsv: a bad input, the command run on it, the
# exit code and the one-line error nmperm must give
#
# usage: tests/test_bad_inputs.sh path/to/nmperm [source root]
#        tests/test_bad_inputs.sh --markdown [source root] > docs/bad-inputs.md
# Each row: make the input (the 'make' column, bash using the helpers below) as $IN, run
# 'nmperm <command>', then check the exit code, that stdout is empty and that stderr is exactly
# one line starting with "nmperm: " that holds the message and names the file at fault ('names':
# IN the input, CKPT the checkpoint, DIR the folder, - nothing). Also checks that
# docs/bad-inputs.md is what --markdown makes of the table. Needs only bash and coreutils.
set -u

if [ "${1:-}" = --markdown ]; then
    MARKDOWN=1
    SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
else
    MARKDOWN=0
    NMPERM=${1:?usage: test_bad_inputs.sh path/to/nmperm [source root]}
    SRC=${2:-$(cd "$(dirname "$0")/.." && pwd)}
    case $NMPERM in /*) ;; *) NMPERM=$PWD/$NMPERM ;; esac
fi
case $SRC in /*) ;; *) SRC=$PWD/$SRC ;; esac
TABLE=$SRC/tests/bad_inputs.tsv
DOC=$SRC/docs/bad-inputs.md

# ------------------------------------------------------------------ input helpers (stdout)

bytes() { # bytes HEX...: the bytes of hex strings
    local h
    for h in "$@"; do
        printf "$(printf '%s' "$h" | sed 's/\(..\)/\\x\1/g')"
    done
}
rep() { # rep N HEX: HEX N times
    local k
    for ((k = 0; k < $1; k++)); do bytes "$2"; done
}
u64() { # u64 N: N as 8 bytes, little-endian
    local h
    h=$(printf '%016x' "$1")
    bytes "${h:14:2}${h:12:2}${h:10:2}${h:8:2}${h:6:2}${h:4:2}${h:2:2}${h:0:2}"
}
npyh_raw() { # npyh_raw TEXT: a version 1.0 .npy preamble and header TEXT (padded to 64 bytes)
    local text=$1
    local pad=$(( (64 - (10 + ${#text} + 1) % 64) % 64 ))
    text=$text$(printf '%*s' "$pad" '')
    local len=$(( ${#text} + 1 ))
    bytes 934e554d50590100 "$(printf '%02x%02x' $((len & 255)) $((len >> 8)))"
    printf '%s\n' "$text"
}
npyh() { # npyh DESCR SHAPE [FORTRAN]: a .npy header; the data follow
    npyh_raw "{'descr': '$1', 'fortran_order': ${3:-False}, 'shape': $2, }"
}
st() { # st JSON: a safetensors header; the data follow
    u64 ${#1}
    printf '%s' "$1"
}
plan_one() { # plan_one TENSOR ROLE AXIS SIZE: a plan of one space "s" with one tensor
    printf '{"spaces": [{"name": "s", "size": %s, "act": "relu", "tensors": [' "$4"
    printf '{"tensor": "%s", "role": "%s", "use": "weight", "axis": %s, "offset": 0}]}]}' \
        "$1" "$2" "$3"
}

# -------------------------------------------------------------------------- markdown

markdown() {
    cat <<'HEAD'
# Bad inputs

What nmperm says about inputs it refuses: one line on stderr, `nmperm: <file>: <reason>` (or
`nmperm: <command>: <reason>` for usage errors), nothing on stdout, exit code 1 (2 is kept for
internal errors). Made from `tests/bad_inputs.tsv` by `tests/test_bad_inputs.sh --markdown`;
the `cli` test suite runs every row (`meson test -C build bad_inputs`) and checks that this page
is up to date. In the commands, IN is the bad input, OK.npy a good 2 x 4 float32 matrix, CKPT
`instances/tiny_llama/model.safetensors` and DIR a folder.

| id | command | input | exit | message contains |
|----|---------|-------|-----:|------------------|
HEAD
    local id input make cmd code names message
    while IFS=$'\t' read -r id input make cmd code names message; do
        case $id in '#'*|'') continue ;; esac
        cmd=${cmd//\$IN/IN}
        cmd=${cmd//\$OK/OK.npy}
        cmd=${cmd//\$CKPT/CKPT}
        cmd=${cmd//\$DIR/DIR}
        printf '| %s | `nmperm %s` | %s | %s | `%s` |\n' "$id" "${cmd//|/\\|}" \
            "${input//|/\\|}" "$code" "${message//|/\\|}"
    done <"$TABLE"
}

if [ "$MARKDOWN" = 1 ]; then
    markdown
    exit 0
fi

# ------------------------------------------------------------------------------ rows

TMP=$(mktemp -d "${TMPDIR:-/tmp}/nmperm-bad.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
DIR=$TMP/dir
mkdir "$DIR"
OK=$TMP/ok.npy
CKPT=$SRC/instances/tiny_llama/model.safetensors
{ npyh '<f4' '(2, 4)'; rep 8 0000803f; } >"$OK"

passed=0
failed=0
ok()  { echo "ok    $1"; passed=$((passed + 1)); }
bad() { echo "FAIL  $1: $2"; failed=$((failed + 1)); }

rows=0
while IFS=$'\t' read -r id input make cmd code names message; do
    case $id in '#'*|'') continue ;; esac
    rows=$((rows + 1))
    IN=$TMP/$id.in
    if ! eval "$make" >"$IN"; then
        bad "$id" "cannot make the input"
        continue
    fi
    # shellcheck disable=SC2086 # the command is a list of words, $IN and friends expanded
    eval "set -- $cmd"
    "$NMPERM" "$@" >out.txt 2>err.txt </dev/null
    rc=$?
    err=$(cat err.txt)
    case $names in
        IN) named=$IN ;; CKPT) named=$CKPT ;; DIR) named=$DIR ;; *) named= ;;
    esac
    if [ "$rc" != "$code" ]; then
        bad "$id" "exit $rc, expected $code (stderr: $err)"
    elif [ -s out.txt ]; then
        bad "$id" "wrote to stdout: $(head -c 200 out.txt)"
    elif [ "$(wc -l <err.txt)" != 1 ] || [ "$(head -c 8 err.txt)" != "nmperm: " ]; then
        bad "$id" "stderr is not one line 'nmperm: ...': $err"
    elif [[ $err != *"$message"* ]]; then
        bad "$id" "stderr lacks '$message': $err"
    elif [ -n "$named" ] && [[ $err != *"$named"* ]]; then
        bad "$id" "stderr does not name $named: $err"
    else
        ok "$id"
    fi
done <"$TABLE"
[ "$rows" -ge 40 ] || bad table "only $rows rows read from $TABLE"

if markdown | cmp -s - "$DOC"; then
    ok "docs/bad-inputs.md is made from the table"
else
    bad "docs/bad-inputs.md" \
        "out of date: run tests/test_bad_inputs.sh --markdown > docs/bad-inputs.md"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
