#!/usr/bin/env bash
# Refresh latency and get_session cost of this checkout against an earlier
# revision, measured in one run of this script so that the machine's load is
# the same for both (a ratio, not two numbers from two days).
#
#   scripts/bench-baseline.sh [REV]
#
# REV defaults to 020899b: main before the session-lifecycle work (no grace
# columns, no device columns, no lifetimes), i.e. "today's" refresh for the
# lifecycle issue's measurement. The script
#   1. builds tessera-bench at REV in a git worktree under target/baseline/
#      (its own target directory) and at HEAD;
#   2. store: runs `bench-store --backends B --secs S --rounds 1` of both
#      builds alternately, ROUNDS times per backend (SQLite, PostgreSQL,
#      MariaDB), HEAD's with every session carrying a device (a 120-byte user
#      agent, a client address, a label: TESSERA_BENCH_DEVICE=1), and prints
#      the median over rounds of the per-round ratio HEAD / REV of
#      refresh_session's p50 latency and throughput at 1 and 8 tasks;
#   3. core: counts get_session's instructions under callgrind in both builds
#      (difference of 2,000 and 22,000 iterations), which is exact.
# Markdown on stdout, progress on stderr. Env: ROUNDS=5 SECS=1 and the
# database URLs of scripts/test-all.sh. Needs git history (a full clone),
# valgrind, PostgreSQL and MariaDB. Not part of CI (it builds the workspace
# twice); its numbers go into BENCHMARKS.md's hand-written part.
set -euo pipefail
cd "$(dirname "$0")/.."

REV="${1:-020899b}"
ROUNDS="${ROUNDS:-5}"
SECS="${SECS:-1}"
export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TESSERA_TEST_MYSQL_URL="${TESSERA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
command -v valgrind >/dev/null || { echo "bench-baseline: valgrind is required" >&2; exit 2; }
git rev-parse --verify --quiet "$REV^{commit}" >/dev/null ||
  { echo "bench-baseline: no revision $REV here (a shallow clone?)" >&2; exit 2; }

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

BASE_SRC=target/baseline/src
BASE_TARGET=target/baseline/target
step "baseline source: $REV"
if [ -d "$BASE_SRC" ]; then
  git -C "$BASE_SRC" checkout -q --detach "$REV"
else
  mkdir -p target/baseline
  git worktree add -q --detach "$BASE_SRC" "$REV"
fi
step "build: baseline ($REV) and HEAD ($(git rev-parse --short HEAD))"
(cd "$BASE_SRC" && CARGO_TARGET_DIR="$PWD/../target" cargo build -q --release -p tessera-bench --bin bench-store --bin bench-core)
cargo build -q --release -p tessera-bench --bin bench-store --bin bench-core
BASE_BIN="$BASE_TARGET/release"
HEAD_BIN="${CARGO_TARGET_DIR:-target}/release"

OUT=target/baseline/out
rm -rf "$OUT"; mkdir -p "$OUT"
for backend in sqlite postgres mysql; do
  for r in $(seq 1 "$ROUNDS"); do
    step "store: $backend, round $r of $ROUNDS"
    "$BASE_BIN/bench-store" --backends "$backend" --secs "$SECS" --rounds 1 >"$OUT/base-$backend-$r.md"
    TESSERA_BENCH_DEVICE=1 TESSERA_BENCH_TASKS=1,8 \
      "$HEAD_BIN/bench-store" --backends "$backend" --secs "$SECS" --rounds 1 >"$OUT/head-$backend-$r.md"
  done
done

step "core: get_session instructions under callgrind"
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1/bench-core" --callgrind get_session "$2" 2>&1 |
    awk '/Collected/ {gsub(",", "", $NF); print $NF}'
}
b1=$(count "$BASE_BIN" 2000); b2=$(count "$BASE_BIN" 22000)
h1=$(count "$HEAD_BIN" 2000); h2=$(count "$HEAD_BIN" 22000)

python3 - "$OUT" "$ROUNDS" "$REV" "$(git rev-parse --short HEAD)" "$b1" "$b2" "$h1" "$h2" <<'PY'
import re, statistics, sys
out, rounds, rev, head = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
b1, b2, h1, h2 = map(int, sys.argv[5:9])
UNIT = {"ns": 1, "µs": 1e3, "ms": 1e6, "s": 1e9}

def refresh_rows(path):
    """(tasks -> (ops/s, p50 ns)) of refresh_session in one bench-store report."""
    rows = {}
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] == "refresh_session":
            rate = float(cells[2].replace(",", ""))
            value, unit = cells[4].split()
            rows[int(cells[1])] = (rate, float(value) * UNIT[unit])
    return rows

print(f"Refresh against `{rev}` (before the session-lifecycle columns), one run of "
      f"`scripts/bench-baseline.sh`: {rounds} alternating rounds per backend, each a "
      "`bench-store --rounds 1` of each build; HEAD's sessions all carry a device (user agent, "
      "address, label). Ratios are HEAD ÷ baseline, the median of the per-round ratios.\n")
print("| backend | tasks | p50 latency, baseline | p50 latency, HEAD | latency ratio | throughput ratio |")
print("|---|---|---|---|---|---|")
worst = 0.0
for backend, name in [("sqlite", "SQLite"), ("postgres", "PostgreSQL"), ("mysql", "MariaDB")]:
    for tasks in (1, 8):
        lat_b, lat_h, lat_r, thr_r = [], [], [], []
        for r in range(1, rounds + 1):
            b = refresh_rows(f"{out}/base-{backend}-{r}.md")[tasks]
            h = refresh_rows(f"{out}/head-{backend}-{r}.md")[tasks]
            lat_b.append(b[1]); lat_h.append(h[1])
            lat_r.append(h[1] / b[1]); thr_r.append(h[0] / b[0])
        lr = statistics.median(lat_r)
        worst = max(worst, lr)
        print(f"| {name} | {tasks} | {statistics.median(lat_b)/1e3:.1f} µs | "
              f"{statistics.median(lat_h)/1e3:.1f} µs | {lr:.3f} | {statistics.median(thr_r):.3f} |")
print()
gb, gh = (b2 - b1) / 20000, (h2 - h1) / 20000
print(f"get_session under callgrind (difference of 2,000 and 22,000 iterations): baseline "
      f"{gb:.0f} instructions, HEAD {gh:.0f}: {gh/gb:.4f}×.\n")
print(f"<!-- baseline-numbers worst_refresh_latency_ratio={worst:.4f} "
      f"get_session_ir_base={gb:.0f} get_session_ir_head={gh:.0f} -->")
PY
