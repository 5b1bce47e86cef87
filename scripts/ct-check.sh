#!/usr/bin/env bash
# Security checklist item 3: the secret comparisons are constant-time.
#
# Counts, with valgrind's callgrind (deterministic instruction counts), the
# instructions executed inside tessera::crypto::ct_eq (callees included)
# while get_session checks a token whose MAC differs in its first vs its last
# byte, and an anti-CSRF header that differs in its first vs its last
# character (the workload is crates/tessera-sqlx/examples/ct_probe.rs, built
# in release mode, where ct_eq is never inlined). Exits non-zero if the two
# counts of a pair differ, or if ct_eq was not reached at all.
#
# Usage: bash scripts/ct-check.sh [ROUNDS]   (default 20 get_session calls per run)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-20}"
command -v valgrind >/dev/null || { echo "ct-check: valgrind is required" >&2; exit 2; }
cargo build --release -q -p tessera-sqlx --example ct_probe
target="${CARGO_TARGET_DIR:-target}"
bin="$target/release/examples/ct_probe"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

count() { # mode -> instructions inside ct_eq
    valgrind --tool=callgrind --callgrind-out-file="$out/$1.out" \
        --toggle-collect='*tessera::crypto::ct_eq*' "$bin" "$1" "$rounds" >"$out/$1.log" 2>&1 \
        || { cat "$out/$1.log" >&2; echo "ct-check: $1 failed" >&2; exit 2; }
    awk '/^(summary|totals):/ {print $2; exit}' "$out/$1.out"
}

declare -A ir
for mode in valid mac-first mac-last csrf-first csrf-last; do
    ir[$mode]="$(count "$mode")"
    printf 'ct-check: %-11s %8s instructions in ct_eq (%s get_session calls)\n' "$mode" "${ir[$mode]}" "$rounds"
done

status=0
for mode in "${!ir[@]}"; do
    if [ -z "${ir[$mode]}" ] || [ "${ir[$mode]}" -eq 0 ]; then
        echo "ct-check: FAIL: ct_eq was not reached in mode $mode" >&2
        status=1
    fi
done
for pair in "mac-first mac-last" "csrf-first csrf-last"; do
    set -- $pair
    if [ "${ir[$1]}" != "${ir[$2]}" ]; then
        echo "ct-check: FAIL: $1 ${ir[$1]} != $2 ${ir[$2]}: the comparison depends on where the mismatch is" >&2
        status=1
    else
        echo "ct-check: ok: $1 == $2 (${ir[$1]})"
    fi
done
# A mismatch of either kind costs what a match costs: valid runs compare the
# MAC and the anti-CSRF token; mac-* runs stop before the anti-CSRF check.
if [ "${ir[csrf-first]}" != "${ir[valid]}" ]; then
    echo "ct-check: FAIL: an anti-CSRF mismatch (${ir[csrf-first]}) costs other than a match (${ir[valid]})" >&2
    status=1
fi
exit $status
