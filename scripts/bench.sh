#!/usr/bin/env bash
# The `bench` command: reruns Tessera's benchmark suite and writes BENCHMARKS.md.
#
#   scripts/bench.sh                 # the whole suite (~15 min), rewrites the generated part of BENCHMARKS.md
#   scripts/bench.sh --only core     # one part (core|store|scale|django|http|feed), others kept from the last run
#   scripts/bench.sh --quick         # tiny iteration counts, every Rust benchmark once (~1 min): what CI runs.
#                                    # Writes target/bench-quick/BENCHMARKS-quick.md, never BENCHMARKS.md.
#
# Parts:
#   core    bench-core: get_session vs the HMAC-SHA256 floor (+ callgrind instruction counts)
#   store   bench-store: create/refresh/revoke on SQLite, PostgreSQL, MariaDB with 1/2/8/32 tasks
#   scale   bench-scale: 1,000,000 sessions, per-user operations, cleanup while serving, query plans
#   django  benches/django: tessera_django vs supertokens-jwt-ref 2.0.0 (+ simplejwt), in a venv;
#           get_session on Django 6.x/3.13 vs 4.2/3.11 and async vs sync (bench_versions.py)
#   http    the axum integration's HTTP benchmark, if present (see find_http_bench below)
#   feed    bench-feed: blacklisting from the change feed vs without / from the database, and
#           revocation and rotation propagation per backend. Written to $OUT/feed.md only: its
#           numbers go into BENCHMARKS.md's hand-written "Change feed" section.
#
# Needs PostgreSQL and MariaDB like scripts/test-all.sh (same variables and defaults):
#   TESSERA_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#   TESSERA_TEST_MYSQL_URL    (default mysql://root@127.0.0.1:3306/test)
# The Django part needs Python 3 with venv and PyPI access (first run only).
set -euo pipefail
cd "$(dirname "$0")/.."

export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TESSERA_TEST_MYSQL_URL="${TESSERA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

QUICK=0
ONLY=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --only) shift; ONLY+=("${1:?--only needs a part name}") ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$QUICK" = 1 ]; then
  OUT=target/bench-quick
  QFLAG=(--quick)
  DEFAULT_PARTS=(core store scale feed)
else
  OUT=target/bench
  QFLAG=()
  DEFAULT_PARTS=(core store scale django http feed)
fi
if [ ${#ONLY[@]} -gt 0 ]; then PARTS=("${ONLY[@]}"); else PARTS=("${DEFAULT_PARTS[@]}"); fi
mkdir -p "$OUT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/release"

step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
want() { local p; for p in "${PARTS[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }

step "build the benchmarks (release)"
cargo build --release -p tessera-bench --bins

if want core; then
  step "core: get_session against the HMAC floor"
  "$BIN/bench-core" "${QFLAG[@]}" >"$OUT/core.md"
  if [ "$QUICK" = 0 ] && command -v valgrind >/dev/null; then
    step "core: instruction counts under callgrind"
    # Instructions per operation = (count at N2 - count at N1) / (N2 - N1):
    # the set-up cost cancels out. Repeatable on a noisy machine.
    count() {
      valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench-core" --callgrind "$1" "$2" 2>&1 |
        awk '/Collected/ {gsub(",", "", $NF); print $NF}'
    }
    g1=$(count get_session 2000); g2=$(count get_session 22000)
    h1=$(count hmac 2000); h2=$(count hmac 22000)
    c1=$(count get_session_both_cookie 2000); c2=$(count get_session_both_cookie 22000)
    b1=$(count get_session_bearer 2000); b2=$(count get_session_bearer 22000)
    awk -v g1="$g1" -v g2="$g2" -v h1="$h1" -v h2="$h2" -v c1="$c1" -v c2="$c2" -v b1="$b1" -v b2="$b2" 'BEGIN {
      g = (g2 - g1) / 20000; h = (h2 - h1) / 20000; c = (c2 - c1) / 20000; b = (b2 - b1) / 20000;
      printf "Instructions per operation under `valgrind --tool=callgrind` (difference of 2,000 and 22,000 iterations, so set-up cancels out):\n\n";
      printf "| operation | instructions |\n|---|---|\n";
      printf "| get_session | %d |\n| HMAC-SHA256 of the signing input | %d |\n| get_session minus HMAC | %d |\n\n", g, h, g - h;
      printf "With both client profiles allowed (docs/PROTOCOL.md §9), the same token: from the Cookie header %d (minus HMAC %d), from `Authorization: Bearer` %d (minus HMAC %d); Bearer / cookie = %.3f.\n\n", c, c - h, b, b - h, b / c;
      printf "Valgrind does not emulate the SHA extensions, so under callgrind `sha2` runs its portable code and the HMAC count is far above what the CPU executes natively; the row that matters is *get_session minus HMAC*, the work Tessera adds to the floor.\n\n";
    }' >>"$OUT/core.md"
  fi
fi

if want store; then
  step "store: create / refresh / revoke at 1, 2, 8, 32 tasks"
  "$BIN/bench-store" "${QFLAG[@]}" >"$OUT/store.md"
fi

if want scale; then
  step "scale: 1,000,000 sessions"
  "$BIN/bench-scale" "${QFLAG[@]}" >"$OUT/scale.md"
fi

if want django; then
  step "django: tessera_django vs supertokens-jwt-ref 2.0.0"
  VENV=benches/django/.venv
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  "$VENV/bin/pip" install -q -r benches/django/requirements.txt
  if [ -f crates/tessera-python/pyproject.toml ]; then
    # Build tessera_django into the venv; if it does not build yet, the
    # harness reports the reference alone and says so.
    if ! (cd crates/tessera-python && VIRTUAL_ENV="$PWD/../../$VENV" PATH="$PWD/../../$VENV/bin:$PATH" \
          maturin develop --release >"../../$OUT/django-build.log" 2>&1); then
      echo "tessera_django did not build (see $OUT/django-build.log); measuring the reference alone" >&2
    fi
  fi
  "$VENV/bin/python" benches/django/bench_django.py "${QFLAG[@]}" >"$OUT/django.md"
  step "django: what get_session adds to a request, beside Django's session engines and the reference"
  "$VENV/bin/python" benches/django/bench_overhead.py "${QFLAG[@]}" >>"$OUT/django.md"

  step "django: get_session on Django 6.x/Python 3.13 and 4.2/3.11, sync and async (one abi3 wheel)"
  # The same wheel in both environments, measured one after the other in
  # this run. The interpreters are pyenv's (as in scripts/test-django.sh).
  rm -rf "$OUT/django-wheel"
  "$VENV/bin/pip" install -q "maturin>=1.5,<2"
  "$VENV/bin/maturin" build --release --quiet --manifest-path crates/tessera-python/Cargo.toml \
    --interpreter "$VENV/bin/python" --out "$OUT/django-wheel" >"$OUT/django-wheel.log" 2>&1
  declare -a VERSION_ROWS=()
  for pair in "6.x 3.13 Django>=6.0,<7" "4.2 3.11 Django>=4.2,<4.3"; do
    read -r dj py spec <<<"$pair"
    interp=$(ls -d /root/.pyenv/versions/"$py".*/bin/python 2>/dev/null | sort -V | tail -n1)
    [ -x "$interp" ] || { echo "bench: Python $py not found under /root/.pyenv/versions" >&2; exit 1; }
    venv=benches/django/.venv-dj$dj-py$py
    [ -x "$venv/bin/python" ] || "$interp" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
    "$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$OUT"/django-wheel/*.whl
    VERSION_ROWS+=("$("$venv/bin/python" benches/django/bench_versions.py "${QFLAG[@]}")")
  done
  # The version-specific build for Python 3.13, to see what abi3 costs.
  rm -rf "$OUT/django-wheel-specific"
  "$VENV/bin/maturin" build --release --quiet --no-default-features --manifest-path crates/tessera-python/Cargo.toml \
    --interpreter benches/django/.venv-dj6.x-py3.13/bin/python --out "$OUT/django-wheel-specific" >>"$OUT/django-wheel.log" 2>&1
  specific=benches/django/.venv-dj6.x-py3.13-specific
  [ -x "$specific/bin/python" ] || "$(ls -d /root/.pyenv/versions/3.13.*/bin/python | sort -V | tail -n1)" -m venv "$specific"
  "$specific/bin/pip" install -q --disable-pip-version-check "Django>=6.0,<7"
  "$specific/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$OUT"/django-wheel-specific/*.whl
  VERSION_ROWS+=("$("$specific/bin/python" benches/django/bench_versions.py "${QFLAG[@]}")")
  printf '%s\n' "${VERSION_ROWS[@]}" | python3 benches/django/versions_table.py >>"$OUT/django.md"
fi

find_http_bench() {
  # The axum integration owns its HTTP benchmark; any of these names works.
  # It must accept --quick and print a Markdown fragment on stdout.
  local c
  for c in "${TESSERA_HTTP_BENCH:-}" benches/http/run.sh crates/tessera-axum/bench.sh crates/tessera-axum/bench-http.sh \
           crates/tessera-axum/bench/http.sh crates/tessera-axum/scripts/bench-http.sh scripts/bench-http.sh; do
    [ -n "$c" ] && [ -f "$c" ] && { echo "$c"; return 0; }
  done
  return 1
}
if want http; then
  step "http: axum extractor against the same route without it"
  if script=$(find_http_bench); then
    bash "$script" "${QFLAG[@]}" >"$OUT/http.md"
  else
    printf '\n### HTTP: axum extractor\n\n**Not measured in this run**: no HTTP benchmark script was found (the axum integration provides it).\n\n' >"$OUT/http.md"
  fi
fi

if want feed; then
  step "feed: blacklisting from the change feed; revocation and rotation propagation"
  "$BIN/bench-feed" "${QFLAG[@]}" >"$OUT/feed.md"
  if command -v valgrind >/dev/null; then
    # The exact cost of answering blacklisting from memory: instructions per
    # get_session with and without, by difference of two iteration counts.
    if [ "$QUICK" = 1 ]; then n1=20; n2=220; else n1=2000; n2=22000; fi
    fcount() {
      valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN/bench-feed" --callgrind "$1" "$2" 2>&1 |
        awk '/Collected/ {gsub(",", "", $NF); print $NF}'
    }
    p1=$(fcount plain $n1); p2=$(fcount plain $n2)
    f1=$(fcount feed $n1); f2=$(fcount feed $n2)
    awk -v p1="$p1" -v p2="$p2" -v f1="$f1" -v f2="$f2" -v n="$((n2 - n1))" 'BEGIN {
      p = (p2 - p1) / n; f = (f2 - f1) / n;
      printf "Instructions per get_session under callgrind (difference of two iteration counts): without blacklisting %d, with blacklisting from the change feed %d: %+d (%.3f×).\n\n", p, f, f - p, f / p;
      printf "<!-- feed-callgrind plain_ir=%d feed_ir=%d -->\n", p, f;
    }' >>"$OUT/feed.md"
  fi
  echo "bench: change-feed results in $OUT/feed.md (not part of the generated block)" >&2
fi

# ---------------------------------------------------------------------------
# Parts not run now are kept from the last run: from $OUT if an earlier run
# left them there, else from BENCHMARKS.md itself (each part's fragment starts
# with its own "### " heading and runs to the next part's). A part found in
# neither stops the script before BENCHMARKS.md is touched: a partial run must
# never drop the results of the parts it did not run.
heading_of() {
  case "$1" in
    core) echo '### Rust core' ;;
    store) echo '### Store throughput' ;;
    scale) echo '### Scale' ;;
    django) echo '### Django' ;;
    http) echo '### HTTP' ;;
  esac
}
if [ "$QUICK" = 0 ]; then
  for p in core store scale django http; do
    [ -f "$OUT/$p.md" ] && continue
    if [ -f BENCHMARKS.md ]; then
      awk -v start="$(heading_of "$p")" '
        /<!-- END GENERATED -->/ { on = 0 }
        on && /^### (Rust core|Store throughput|Scale|Django|HTTP)/ && index($0, start) != 1 { on = 0 }
        index($0, start) == 1 && !done { on = 1; done = 1 }
        on { print }
      ' BENCHMARKS.md >"$OUT/$p.md.kept"
    fi
    if [ -s "$OUT/$p.md.kept" ]; then
      mv "$OUT/$p.md.kept" "$OUT/$p.md"
      echo "bench: part $p kept from BENCHMARKS.md (not run now)" >&2
    else
      rm -f "$OUT/$p.md.kept"
      echo "bench: no earlier results for part $p in $OUT or BENCHMARKS.md; run it too (--only $p) or the whole suite. BENCHMARKS.md is unchanged." >&2
      exit 1
    fi
  done
fi

# Assemble. Numbers are read back from the comments each part leaves.
num() { { grep -ho "$1=[0-9.]*" "$OUT"/*.md 2>/dev/null || true; } | head -1 | cut -d= -f2; }
summary() {
  local gm gmin fm fmin rg
  gm=$(num get_session_median_ns); gmin=$(num get_session_min_ns)
  fm=$(num floor_median_ns); fmin=$(num floor_min_ns)
  rg=$(num reference_get_session_median_ns)
  echo "### Targets at a glance"
  echo
  echo "| target | measured | verdict |"
  echo "|---|---|---|"
  if [ -n "$gm" ] && [ -n "$fm" ]; then
    awk -v gm="$gm" -v gmin="$gmin" -v fm="$fm" -v fmin="$fmin" 'BEGIN {
      printf "| Rust get_session ≤ 1 µs (median) | %.0f ns (min %.0f ns) | %s |\n", gm, gmin, (gm <= 1000 ? "met" : "**missed**");
      printf "| Rust get_session ≤ 2.5 × HMAC floor | %.2f× median/median, %.2f× min/min | %s |\n", gm / fm, gmin / fmin, (gm / fm <= 2.5 ? "met" : "**missed**");
    }'
  fi
  if [ -n "$gm" ] && [ -n "$rg" ]; then
    awk -v gm="$gm" -v rg="$rg" 'BEGIN {
      printf "| Rust get_session ≥ 25 × faster than the reference get_session | %.0f× (%.1f µs vs %.0f ns, medians) | %s |\n", rg / gm, rg / 1000, gm, (rg / gm >= 25 ? "met" : "**missed**");
    }'
  fi
  { grep -h '^| ≥ [0-9,]* \(creates\|refreshes\)/s' "$OUT/store.md" 2>/dev/null || true; } | sed 's/^| ≥/| PostgreSQL, 32 tasks: ≥/'
  if grep -q 'tessera_django: not measured' "$OUT/django.md" 2>/dev/null; then
    echo "| tessera_django ≥ 5 × the reference, each of the four operations | not measured in this run | — |"
  elif [ -f "$OUT/django.md" ]; then
    for op in create_new_session get_session refresh_session revoke_session; do
      r=$(num "${op}_ratio")
      [ -n "$r" ] && awk -v r="$r" -v op="$op" 'BEGIN { printf "| tessera_django %s ≥ 5 × the reference | %.1f× | %s |\n", op, r, (r >= 5 ? "met" : "**missed**") }'
    done
  fi
  if grep -q 'Not measured in this run' "$OUT/http.md" 2>/dev/null; then
    echo "| axum extractor keeps ≥ 90% of unauthenticated throughput | not measured in this run | — |"
  elif [ -f "$OUT/http.md" ]; then
    hn() { grep -o "$1=[0-9.]*" "$OUT/http.md" | head -1 | cut -d= -f2; }
    r=$(hn authed_cpu_ratio)
    [ -n "$r" ] && awk -v r="$r" 'BEGIN { printf "| axum extractor keeps ≥ 90%% of unauthenticated throughput | %.1f%% per server CPU-second | %s |\n", r * 100, (r >= 0.9 ? "met" : "**missed**") }'
    r=$(hn authed_vs_ts_memory)
    [ -n "$r" ] && awk -v r="$r" 'BEGIN { printf "| axum `/authed` ≥ 1.3× tower-sessions `MemoryStore` | %.2f× per server CPU-second | %s |\n", r, (r >= 1.3 ? "met" : "**missed**") }'
    a=$(hn authed_above_plain_ir); f=$(hn hmac_above_plain_ir)
    [ -n "$a" ] && [ -n "$f" ] && awk -v a="$a" -v f="$f" 'BEGIN { printf "| axum `/authed` instructions above `/plain` ≤ 2× the HMAC route'"'"'s (callgrind, software SHA-256) | %.2f× | %s |\n", a / f, (a <= 2 * f ? "met" : "**missed**") }'
  fi
  echo
}

generated() {
  echo "<!-- BEGIN GENERATED: scripts/bench.sh rewrites everything down to END GENERATED -->"
  echo
  echo "Generated by \`scripts/bench.sh${QFLAG:+ ${QFLAG[*]}}\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)'), on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB."
  echo
  summary
  for p in core store scale django http; do
    [ -f "$OUT/$p.md" ] && cat "$OUT/$p.md"
  done
  echo
  echo "<!-- END GENERATED -->"
}

if [ "$QUICK" = 1 ]; then
  generated >"$OUT/BENCHMARKS-quick.md"
  step "quick run done: $OUT/BENCHMARKS-quick.md (numbers from --quick mean nothing)"
  grep -c '^| ' "$OUT/BENCHMARKS-quick.md" | xargs -I{} echo "bench quick: {} table rows written" >&2
  exit 0
fi

# Rewrite the generated block of BENCHMARKS.md; keep the hand-written text around it.
gen_file="$OUT/generated.md"
generated >"$gen_file"
if [ -f BENCHMARKS.md ] && grep -q '<!-- BEGIN GENERATED' BENCHMARKS.md; then
  awk -v gen="$gen_file" '
    /<!-- BEGIN GENERATED/ { while ((getline line < gen) > 0) print line; skip = 1; next }
    /<!-- END GENERATED -->/ { skip = 0; next }
    !skip { print }
  ' BENCHMARKS.md >"$OUT/BENCHMARKS.md.new"
  mv "$OUT/BENCHMARKS.md.new" BENCHMARKS.md
else
  { echo "# Benchmarks"; echo; echo "Rerun with \`scripts/bench.sh\`."; echo; cat "$gen_file"; } >BENCHMARKS.md
fi
step "BENCHMARKS.md updated"
