#!/usr/bin/env bash
# HTTP benchmark of the axum integration. One binary (the tessera-bench-http
# crate) serves the same trivial GET handler nine ways:
#   /plain       no session at all (the baseline)
#   /hmac        /plain plus one HMAC-SHA256 of a real access token's signing
#                input: the floor of any signed-token check
#   /layer-only  under TesseraLayer, no extractor
#   /authed      TesseraLayer + the Session extractor (get_session)
#   /bearer      the same from an Authorization: Bearer header (header mode)
#   /jwt         a hand-written jsonwebtoken route (HS256 from a cookie)
#   /ts-memory, /ts-moka, /ts-sqlite
#                tower-sessions with its MemoryStore, moka and SQLite stores
# and every route receives the same Cookie header (a Tessera session, the
# jwt cookie, one session per tower-sessions store) and the same
# Authorization: Bearer header (read only by /bearer).
#
# Two measurements, both printed as Markdown for BENCHMARKS.md on stdout
# (progress on stderr):
#   1. wrk over loopback, routes interleaved in rounds; requests per second
#      and requests per second of the server's own CPU time (user+system,
#      from /proc), so the numbers do not move with other work on the
#      machine; medians of per-round ratios.
#   2. callgrind: user-space instructions per request of each route (zeroed
#      and dumped around a wrk run per route), exact and independent of the
#      machine's load. Valgrind hides SHA-NI, so the HMAC of /hmac and
#      /authed runs in software there: compare /authed with /hmac, which
#      pays the same software HMAC.
# It ends with an `<!-- http-numbers … -->` comment that scripts/bench.sh
# reads. Usage:
#   bash benches/http/run.sh            (env: DURATION=3s CONNECTIONS=64 ROUNDS=11 CG_DURATION=5s)
#   bash benches/http/run.sh --quick    (1 s, one round: checks that it works)
#   bash benches/http/run.sh --callgrind  (only the instruction counts)
# Installs wrk and valgrind with apt-get when missing. A benchmark, not a
# test: it fails only if something does not work (a route not answering 200).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-3s}"
CG_DURATION="${CG_DURATION:-5s}"
CONNECTIONS="${CONNECTIONS:-64}"
ROUNDS="${ROUNDS:-11}"
DO_WRK=1
case "${1:-}" in
  --quick) DURATION=1s CG_DURATION=1s ROUNDS=1 ;;
  --callgrind) DO_WRK=0 ;;
esac
THREADS="${THREADS:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

for tool in wrk valgrind; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done

cargo build --release -q -p tessera-bench-http
BIN="$CARGO_TARGET_DIR/release/tessera-bench-http"
ROUTES=(/plain /hmac /layer-only /authed /bearer /jwt /ts-memory /ts-moka /ts-sqlite)
declare -A WHAT=(
  [/plain]="no session"
  [/hmac]="one HMAC-SHA256 of the token's signing input (the floor)"
  [/layer-only]="\`TesseraLayer\`, no extractor"
  [/authed]="\`TesseraLayer\` + \`Session\` (\`get_session\`: one HMAC, no database)"
  [/bearer]="\`TesseraLayer\` + \`Session\` from \`Authorization: Bearer\` (header mode, no anti-CSRF)"
  [/jwt]="hand-written \`jsonwebtoken\` HS256 check of a cookie"
  [/ts-memory]="tower-sessions 0.14, \`MemoryStore\`"
  [/ts-moka]="tower-sessions 0.14, \`MokaStore\`"
  [/ts-sqlite]="tower-sessions 0.14, \`SqliteStore\` (file)"
)

WORK="$(mktemp -d)"
PID=""
stop_server() { if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT

# With two or more cores, the server gets core 0 and one tokio worker, wrk
# gets core 1: the server is then CPU-bound, so the numbers compare the
# per-request CPU cost of the routes rather than the load generator.
SERVER_PIN=() WRK_PIN=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
  SERVER_PIN=(taskset -c 0) WRK_PIN=(taskset -c 1)
  export TOKIO_WORKER_THREADS=1
fi

# start_server [runner…]: starts a fresh server (fresh databases) and logs
# in; sets PID, BASE and COOKIE.
start_server() {
  local db="$WORK/run$RANDOM"
  mkdir -p "$db"
  TESSERA_DATABASE_URL="sqlite://$db/tessera.sqlite" BENCH_TOWER_SESSIONS_SQLITE="sqlite://$db/ts.sqlite?mode=rwc" \
    RUST_LOG=warn "${SERVER_PIN[@]}" "$@" "$BIN" >"$db/out" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do grep -q 'listening on' "$db/out" && break; sleep 0.1; done
  BASE="$(grep -o 'http://[0-9.:]*' "$db/out" | head -1)"
  [[ -n "$BASE" ]] || { cat "$db/out" >&2; exit 1; }
  # All sessions' cookies go with every request to every route.
  COOKIE="$(for login in /login /ts-memory/login /ts-moka/login /ts-sqlite/login; do
    curl -s -D - -o /dev/null -X POST "$BASE$login"; done \
    | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\);.*/\1/Ip' | paste -sd ';' - | sed 's/;/; /g')"
  # The bearer token of /bearer (header mode): sent with every request too,
  # as the cookies are; only /bearer's manager reads it.
  BEARER="$(curl -s -D - -o /dev/null -X POST -H 'st-auth-mode: header' "$BASE/bearer/login" \
    | tr -d '\r' | sed -n 's/^st-access-token: //Ip')"
  [[ -n "$BEARER" ]] || { echo "/bearer/login gave no st-access-token" >&2; exit 1; }
  AUTH="Authorization: Bearer $BEARER"
  local path code
  for path in "${ROUTES[@]}"; do
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $COOKIE" -H "$AUTH" "$BASE$path")"
    [[ "$code" == 200 ]] || { echo "$path answered $code, expected 200" >&2; exit 1; }
  done
}

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f%%", 100 * a / b}'; }

NUMBERS=""
if [[ "$DO_WRK" == 1 ]]; then
  start_server
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }  # server user+system time
  TICK="$(getconf CLK_TCK)"
  # One wrk run: prints "<req/s> <requests per CPU-second of the server>".
  rps() {
    local t0 t1 out
    t0="$(cpu_ticks)"
    out="$("${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Cookie: $COOKIE" -H "$AUTH" "$BASE$1")"
    t1="$(cpu_ticks)"
    if grep -q 'Non-2xx' <<<"$out"; then echo "$1: non-2xx answers during the run" >&2; exit 1; fi
    awk -v dt="$((t1 - t0))" -v tick="$TICK" '
      /^Requests\/sec:/ {r = $2}
      / requests in / {n = $1}
      END {printf "%s %.0f\n", r, (dt > 0 ? n / (dt / tick) : 0)}' <<<"$out"
  }
  LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
  rps /plain >/dev/null  # warm-up
  declare -A R C RATIO
  for round in $(seq 1 "$ROUNDS"); do
    declare -A this=()
    for path in "${ROUTES[@]}"; do
      read -r v c <<<"$(rps "$path")"
      R[$path]="${R[$path]:-} $v"
      C[$path]="${C[$path]:-} $c"
      this[$path]="$c"; this[w$path]="$v"
      printf 'round %d  %-12s %9.0f req/s  %9.0f req per server CPU-second\n' "$round" "$path" "$v" "$c" >&2
    done
    # Ratios within a round (measurements seconds apart) cancel slow drifts
    # in what the rest of the machine is doing.
    for path in "${ROUTES[@]}"; do
      RATIO[$path]="${RATIO[$path]:-} $(awk -v a="${this[$path]}" -v p="${this[/plain]}" 'BEGIN {print a / p}')"
    done
    RATIO[wauthed]="${RATIO[wauthed]:-} $(awk -v a="${this[w/authed]}" -v p="${this[w/plain]}" 'BEGIN {print a / p}')"
    for peer in /layer-only /jwt /ts-memory /ts-moka /ts-sqlite; do
      RATIO[vs$peer]="${RATIO[vs$peer]:-} $(awk -v a="${this[/authed]}" -v p="${this[$peer]}" 'BEGIN {print a / p}')"
    done
    # Server CPU time per request above /plain, /authed against /hmac: the
    # same comparison as the instruction counts below, with SHA-NI.
    RATIO[cpu_above]="${RATIO[cpu_above]:-} $(awk -v a="${this[/authed]}" -v h="${this[/hmac]}" -v p="${this[/plain]}" \
      'BEGIN {d = 1 / h - 1 / p; print (d > 0 ? (1 / a - 1 / p) / d : 0)}')"
  done
  stop_server
  LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
  PIN_NOTE="server and wrk unpinned"
  [[ ${#SERVER_PIN[@]} -gt 0 ]] && PIN_NOTE="server pinned to core 0 with one tokio worker, wrk to core 1"

  echo
  echo "### HTTP: axum extractor"
  echo
  echo "One binary (crate \`tessera-bench-http\`, release build) serves the same handler nine ways; wrk over loopback, \`-t$THREADS -c$CONNECTIONS -d$DURATION\`, $ROUNDS interleaved round(s) over the routes; medians of the rounds, and for the ratios the median of the per-round ratios; $PIN_NOTE. Every request carries the same Cookie header (${#COOKIE} bytes: the Tessera session, the \`jwt\` cookie, one session per tower-sessions store) and the same \`Authorization: Bearer\` header (read only by \`/bearer\`), and every route answers 200 (checked before measuring; a non-2xx answer aborts the run). Two numbers per route: wrk's requests per second, and requests per second of server CPU time (requests ÷ the server process's user+system time during the run), which is what one fully available core serves and does not move with the other work on this shared machine. Load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
  echo
  echo "| route | what | req/s (wrk) | req per server CPU-second | vs /plain (CPU, median of rounds) |"
  echo "|---|---|---|---|---|"
  for path in "${ROUTES[@]}"; do
    awk -v r="$(echo "${R[$path]}" | median)" -v c="$(echo "${C[$path]}" | median)" -v q="$(echo "${RATIO[$path]}" | median)" \
      -v p="\`$path\`" -v w="${WHAT[$path]}" 'BEGIN {printf "| %s | %s | %.0f | %.0f | %.1f%% |\n", p, w, r, c, 100 * q}'
  done
  RA="$(echo "${RATIO[/authed]}" | median)"; RAW="$(echo "${RATIO[wauthed]}" | median)"
  RAL="$(echo "${RATIO[vs/layer-only]}" | median)"; RMEM="$(echo "${RATIO[vs/ts-memory]}" | median)"
  RMOKA="$(echo "${RATIO[vs/ts-moka]}" | median)"; RSQL="$(echo "${RATIO[vs/ts-sqlite]}" | median)"
  RJWT="$(echo "${RATIO[vs/jwt]}" | median)"; RCPU="$(echo "${RATIO[cpu_above]}" | median)"
  echo
  echo "| target (median of per-round ratios, server CPU) | measured | verdict |"
  echo "|---|---|---|"
  awk -v ra="$RA" -v raw="$RAW" -v ral="$RAL" -v mem="$RMEM" -v moka="$RMOKA" -v sql="$RSQL" -v jwt="$RJWT" -v cpu="$RCPU" 'BEGIN {
    printf "| `/authed` ≥ 90%% of `/plain` | %.1f%% per server CPU-second (%.1f%% wrk req/s) | %s |\n", 100 * ra, 100 * raw, (ra >= 0.9 ? "met" : "**missed**")
    printf "| `/authed` ≥ 1.3× tower-sessions `MemoryStore` | %.2f× | %s |\n", mem, (mem >= 1.3 ? "met" : "**missed**")
    printf "| (for reference) `/authed` against `/layer-only` | %.1f%% | — |\n", 100 * ral
    printf "| (for reference) `/authed` against moka / SQLite tower-sessions / hand-written jsonwebtoken | %.2f× / %.2f× / %.2f× | — |\n", moka, sql, jwt
    printf "| (for reference) server CPU per request above `/plain`: `/authed` ÷ `/hmac` (SHA-NI; noisy, a difference of small numbers) | %.2f× | — |\n", cpu
  }'
  NUMBERS="authed_cpu_ratio=$RA authed_wrk_ratio=$RAW authed_vs_layer_cpu_ratio=$RAL authed_vs_ts_memory=$RMEM authed_vs_ts_moka=$RMOKA authed_vs_ts_sqlite=$RSQL authed_vs_jwt=$RJWT"
fi

# Instruction counts: a fresh server under callgrind.
start_server valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out.%p"
for path in "${ROUTES[@]}"; do
  "${WRK_PIN[@]}" wrk -t1 -c4 -d1s -H "Cookie: $COOKIE" -H "$AUTH" "$BASE$path" >/dev/null  # warm-up
done
declare -A IR
for path in "${ROUTES[@]}"; do
  callgrind_control -z "$PID" >/dev/null
  n="$("${WRK_PIN[@]}" wrk -t1 -c1 -d"$CG_DURATION" -H "Cookie: $COOKIE" -H "$AUTH" "$BASE$path" | awk '/ requests in / {print $1}')"
  callgrind_control -d "${path#/}" "$PID" >/dev/null
  f="$(ls -t "$WORK"/callgrind.out.* | head -1)"
  ir="$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')"
  IR[$path]=$((ir / n))
  echo "callgrind $path: ${IR[$path]} instructions per request ($n requests)" >&2
done
stop_server
P=${IR[/plain]}
ABOVE_A=$((IR[/authed] - P)) ABOVE_H=$((IR[/hmac] - P))
echo
echo "### HTTP: instructions per request (callgrind)"
echo
echo "User-space instructions per request of each route, counted by callgrind around a \`wrk -c1 -d$CG_DURATION\` run per route (one connection: one request per wake-up, so the count repeats from run to run) (the same Cookie header); exact, and independent of the machine's load. Valgrind hides SHA-NI from the program, so the HMAC of \`/hmac\` and \`/authed\` runs in software here: \`/authed\` is compared with \`/hmac\`, which pays the same software HMAC."
echo
echo "| route | instructions per request | above \`/plain\` |"
echo "|---|---|---|"
for path in "${ROUTES[@]}"; do
  echo "| \`$path\` | ${IR[$path]} | $((IR[$path] - P)) |"
done
echo
echo "| target | measured | verdict |"
echo "|---|---|---|"
awk -v a="$ABOVE_A" -v h="$ABOVE_H" -v b="$((IR[/bearer] - P))" 'BEGIN {
  printf "| instructions above `/plain`: `/authed` ≤ 2 × `/hmac` | %d ÷ %d = %.2f× | %s |\n", a, h, a / h, (a <= 2 * h ? "met" : "**missed**")
  printf "| (for reference) what Tessera adds beside the HMAC: `/authed` − `/hmac` | %d instructions | — |\n", a - h
  printf "| (for reference) `/bearer` (Authorization: Bearer) against `/authed` (cookie), above `/plain` | %d ÷ %d = %.2f× | — |\n", b, a, b / a
}'
NUMBERS="$NUMBERS authed_above_plain_ir=$ABOVE_A hmac_above_plain_ir=$ABOVE_H bearer_above_plain_ir=$((IR[/bearer] - P))"
echo
echo "<!-- http-numbers $NUMBERS -->"
