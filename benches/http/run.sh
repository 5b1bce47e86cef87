#!/usr/bin/env bash
# HTTP benchmark of the axum integration: requests per second of the same
# trivial GET handler with the Session extractor (/authed) and without any
# Tessera (/plain), served by one binary (tessera-axum's bench_server example)
# and measured in one run with wrk over loopback. Also measures the layer
# alone (/layer-only).
#
# Prints a Markdown fragment for BENCHMARKS.md on stdout (progress on stderr),
# ending with an `<!-- http-numbers … -->` comment that scripts/bench.sh can
# read. Usage:
#   bash benches/http/run.sh           (env: DURATION=3s CONNECTIONS=64 ROUNDS=11)
#   bash benches/http/run.sh --quick   (2 s, one round: checks that it works)
#   bash benches/http/run.sh --callgrind
#       user-space instructions per request of each route, counted by
#       valgrind's callgrind (zeroed and dumped around a wrk run per route):
#       exact and independent of other load on the machine, so the tool for
#       deciding whether a change to the layer or the extractor helps. It does
#       not count kernel time, and valgrind hides SHA-NI from the program, so
#       the HMAC of /authed runs in software there (much costlier than on a
#       real CPU with SHA-NI); compare /layer-only with /plain, and /authed
#       with itself across changes.
# Installs wrk with apt-get when it is missing. A benchmark, not a test: it
# fails only if something does not work (e.g. /authed does not answer 200).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-3s}"
CONNECTIONS="${CONNECTIONS:-64}"
ROUNDS="${ROUNDS:-11}"
MODE=wrk
if [[ "${1:-}" == "--quick" ]]; then DURATION=2s ROUNDS=1; fi
if [[ "${1:-}" == "--callgrind" ]]; then MODE=callgrind; fi
THREADS="${THREADS:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (apt-get)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [[ "$MODE" == callgrind ]] && ! command -v valgrind >/dev/null; then
  echo "installing valgrind (apt-get)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi

cargo build --release -q -p tessera-axum --example bench_server
BIN="$CARGO_TARGET_DIR/release/examples/bench_server"

WORK="$(mktemp -d)"
cleanup() { [[ -n "${PID:-}" ]] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# With two or more cores, the server gets core 0 and one tokio worker, wrk
# gets core 1: the server is then CPU-bound, so the numbers compare the
# per-request CPU cost of the routes rather than the load generator.
SERVER_PIN=() WRK_PIN=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
  SERVER_PIN=(taskset -c 0) WRK_PIN=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi
RUNNER=()
[[ "$MODE" == callgrind ]] && RUNNER=(valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p")
TESSERA_DATABASE_URL="sqlite://$WORK/bench.sqlite" RUST_LOG=warn "${SERVER_PIN[@]}" "${RUNNER[@]}" "$BIN" >"$WORK/out" 2>&1 &
PID=$!
for _ in $(seq 1 600); do grep -q 'listening on' "$WORK/out" && break; sleep 0.1; done
BASE="$(grep -o 'http://[0-9.:]*' "$WORK/out" | head -1)"
[[ -n "$BASE" ]] || { cat "$WORK/out" >&2; exit 1; }

# A real session: its cookies go with every request to every route, so the
# three routes receive identical requests.
COOKIE="$(curl -s -D - -o /dev/null -X POST "$BASE/login" \
  | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\);.*/\1/Ip' | paste -sd ';' - | sed 's/;/; /g')"
for path in /plain /layer-only /authed; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" "$BASE$path")"
  [[ "$code" == 200 ]] || { echo "$path answered $code, expected 200" >&2; exit 1; }
done

if [[ "$MODE" == callgrind ]]; then
  echo "### HTTP: axum extractor, instructions per request (callgrind)"
  echo
  echo "| route | user-space instructions per request | vs /plain |"
  echo "|---|---|---|"
  for path in /plain /layer-only /authed; do
    "${WRK_PIN[@]}" wrk -t1 -c4 -d2s -H "Cookie: $COOKIE" "$BASE$path" >/dev/null  # warm-up
  done
  base=""
  for path in /plain /layer-only /authed; do
    callgrind_control -z "$PID" >/dev/null
    n="$("${WRK_PIN[@]}" wrk -t1 -c4 -d6s -H "Cookie: $COOKIE" "$BASE$path" | awk '/ requests in / {print $1}')"
    callgrind_control -d "${path#/}" "$PID" >/dev/null
    f="$(ls -t "$WORK"/callgrind.out.* | head -1)"
    ir="$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
    per=$((ir / n)); base="${base:-$per}"
    echo "| \`$path\` | $per | $(awk -v a="$per" -v b="$base" 'BEGIN {printf "%+.1f%%", 100 * (a - b) / b}') |"
  done
  echo
  echo "(valgrind hides SHA-NI: the HMAC of /authed runs in software here.)"
  exit 0
fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }  # server user+system time
TICK="$(getconf CLK_TCK)"

# One wrk run: prints "<req/s> <requests per CPU-second of the server>".
# The second number counts the server's own CPU time, so it does not depend
# on how much of the machine other processes take during the run.
rps() {
  local t0 t1 out
  t0="$(cpu_ticks)"
  out="$("${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Cookie: $COOKIE" "$BASE$1")"
  t1="$(cpu_ticks)"
  if grep -q 'Non-2xx' <<<"$out"; then echo "$1: non-2xx answers during the run" >&2; exit 1; fi
  awk -v dt="$((t1 - t0))" -v tick="$TICK" '
    /^Requests\/sec:/ {r = $2}
    / requests in / {n = $1}
    END {printf "%s %.0f\n", r, (dt > 0 ? n / (dt / tick) : 0)}' <<<"$out"
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
rps /plain >/dev/null  # warm-up
declare -A R C
RATIO_A="" RATIO_AL="" RATIO_AW=""
for round in $(seq 1 "$ROUNDS"); do
  declare -A this=()
  for path in /plain /layer-only /authed; do
    read -r v c <<<"$(rps "$path")"
    R[$path]="${R[$path]:-} $v"
    C[$path]="${C[$path]:-} $c"
    this[$path]="$c"; this[w$path]="$v"
    printf 'round %d  %-12s %9.0f req/s  %9.0f req per server CPU-second\n' "$round" "$path" "$v" "$c" >&2
  done
  # Ratios within a round (measurements seconds apart) cancel slow drifts
  # in what the rest of the machine is doing.
  RATIO_A="$RATIO_A $(awk -v a="${this[/authed]}" -v p="${this[/plain]}" 'BEGIN {print a / p}')"
  RATIO_AL="$RATIO_AL $(awk -v a="${this[/authed]}" -v l="${this[/layer-only]}" 'BEGIN {print a / l}')"
  RATIO_AW="$RATIO_AW $(awk -v a="${this[w/authed]}" -v p="${this[w/plain]}" 'BEGIN {print a / p}')"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
P="$(echo "${R[/plain]}" | median)";      PC="$(echo "${C[/plain]}" | median)"
L="$(echo "${R[/layer-only]}" | median)"; LC="$(echo "${C[/layer-only]}" | median)"
A="$(echo "${R[/authed]}" | median)";     AC="$(echo "${C[/authed]}" | median)"
RA="$(echo "$RATIO_A" | median)"; RAL="$(echo "$RATIO_AL" | median)"; RAW="$(echo "$RATIO_AW" | median)"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
PIN_NOTE="server and wrk unpinned"
[[ ${#SERVER_PIN[@]} -gt 0 ]] && PIN_NOTE="server pinned to core 0 with one tokio worker, wrk to core 1"

echo
echo "### HTTP: axum extractor"
echo
echo "One binary (\`tessera-axum\` example \`bench_server\`, release build) serves the same handler three ways; wrk over loopback, \`-t$THREADS -c$CONNECTIONS -d$DURATION\`, $ROUNDS interleaved round(s) (plain, layer-only, authed, plain, …); medians of the rounds, and for the target the median of the per-round ratios; $PIN_NOTE. Every request carries the same real session cookies, and \`/authed\` answers 200 (checked before measuring; a non-2xx answer aborts the run). Two numbers per route: wrk's requests per second, and requests per second of server CPU time (requests ÷ the server process's user+system time during the run), which is what one fully available core serves and does not move with the other work on this shared machine. Load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
echo
echo "| route | what | req/s (wrk) | req per server CPU-second | vs /plain (wrk) | vs /plain (CPU) |"
echo "|---|---|---|---|---|---|"
awk -v p="$P" -v pc="$PC" -v l="$L" -v lc="$LC" -v a="$A" -v ac="$AC" -v ra="$RA" -v ral="$RAL" -v raw="$RAW" 'BEGIN {
  printf "| `/plain` | no Tessera | %.0f | %.0f | 100%% | 100%% |\n", p, pc
  printf "| `/layer-only` | `TesseraLayer`, no extractor | %.0f | %.0f | %.1f%% | %.1f%% |\n", l, lc, 100 * l / p, 100 * lc / pc
  printf "| `/authed` | `TesseraLayer` + `Session` extractor (`get_session`: one HMAC, no database) | %.0f | %.0f | %.1f%% | %.1f%% |\n", a, ac, 100 * a / p, 100 * ac / pc
  printf "\n| target (median of per-round ratios) | measured | verdict |\n|---|---|---|\n"
  printf "| axum extractor keeps ≥ 90%% of unauthenticated throughput: `/authed` vs `/plain` (no Tessera at all) | %.1f%% per server CPU-second; %.1f%% wrk req/s | %s |\n", 100 * ra, 100 * raw, (ra >= 0.9 ? "met" : "**missed**")
  printf "| the same, `/authed` vs `/layer-only` (the layer on both, as in an application where it wraps every route) | %.1f%% per server CPU-second | %s |\n", 100 * ral, (ral >= 0.9 ? "met" : "**missed**")
  printf "\n<!-- http-numbers authed_cpu_ratio=%.4f authed_wrk_ratio=%.4f authed_vs_layer_cpu_ratio=%.4f plain_rps=%.0f authed_rps=%.0f layer_only_rps=%.0f plain_req_per_cpu_s=%.0f authed_req_per_cpu_s=%.0f -->\n", ra, raw, ral, p, a, l, pc, ac
}'
