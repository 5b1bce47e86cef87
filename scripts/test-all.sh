#!/usr/bin/env bash
# Runs every test of the project against real databases.
#
# Needs PostgreSQL and MariaDB/MySQL; the URLs default to the local services
# (trust auth / empty root password) and can be overridden:
#   TESSERA_TEST_POSTGRES_URL  (default postgres://postgres@127.0.0.1:5432/test)
#   TESSERA_TEST_MYSQL_URL     (default mysql://root@127.0.0.1:3306/test)
set -euo pipefail
cd "$(dirname "$0")/.."

export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TESSERA_TEST_MYSQL_URL="${TESSERA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
# A backend whose URL is missing fails the run instead of being skipped.
export TESSERA_REQUIRE_ALL_BACKENDS=1

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
step "Rust tests (SQLite, PostgreSQL, MariaDB)"
mkdir -p target
if ! cargo test --workspace -- --nocapture >target/rust-tests.log 2>&1; then
  grep -E 'FAILED|panicked|^error' -A15 target/rust-tests.log | head -150 >&2
  echo "Rust tests failed; the whole log is target/rust-tests.log" >&2
  exit 1
fi
grep -E '^test result:|Running ' target/rust-tests.log
step "backends exercised by the conformance suite (tests per backend)"
grep -oE 'conformance [a-z_]+: backend [a-z]+' target/rust-tests.log | awk '{print $NF}' | sort | uniq -c
step "demo on each backend and multi-instance"
grep -oE '(demo accounts|multi-instance): backend [a-z]+' target/rust-tests.log | sort | uniq -c
step "hardening (SECURITY.md): races, attacker model, crashes, load, database faults (short CI settings; scripts/soak.sh runs the long ones)"
grep -E '^(races [a-z]+: [0-9]+ rounds of|properties \(|crash-soak:|load-soak:)' target/rust-tests.log || true
grep -oE '^(security|faults) [a-z0-9_]+: backend [a-z]+' target/rust-tests.log | awk '{print $1, $NF}' | sort | uniq -c || true
grep -E '^test result:' target/rust-tests.log | awk '{ran += $4; ign += $8} END {print ran " Rust tests passed, " ign " ignored"}'
step "Galera cluster (scripts/galera.sh, 3 nodes on ports 4306-4308): per-backend suites, cluster tests, node faults (short; scripts/soak.sh galera runs the long ones)"
bash scripts/galera.sh start
galera_log=target/galera-tests.log
if ! (
  export TESSERA_TEST_GALERA_URLS="$(bash scripts/galera.sh urls)" TESSERA_REQUIRE_GALERA=1
  set -x
  cargo test -p tessera-sqlx --test protocol --test security -- galera:: --nocapture
  cargo test -p tessera-sqlx --test galera --test retry --test store -- --nocapture
  # Kills and freezes nodes: alone.
  TESSERA_GALERA_FAULTS=1 cargo test -p tessera-sqlx --test galera node_faults -- --nocapture --test-threads=1
  # The demo's crash soak (the server SIGKILLed under load), restarted on the
  # next node after each kill.
  TESSERA_SOAK_BACKENDS=galera cargo test -p tessera-demo --test crash -- --nocapture
) >"$galera_log" 2>&1; then
  grep -E 'FAILED|panicked|^error' -A15 "$galera_log" | head -100 >&2
  bash scripts/galera.sh status >&2 || true
  echo "Galera tests failed; the whole log is $galera_log" >&2
  exit 1
fi
grep -E '^test result:|^galera (races|faults)|^crash-soak: backend|^crash-cycle: ' "$galera_log"
grep -oE '(conformance|races|properties|security) [a-z0-9_]+: backend galera' "$galera_log" | awk '{print $1}' | sort | uniq -c
step "Django package: one abi3 wheel, pytest-django over the Django x Python matrix on SQLite, PostgreSQL, MariaDB"
bash scripts/test-django.sh
step "browser tests (real supertokens-website 4.2.0 and the demo page in Chromium), multi-instance demo"
bash scripts/test-browser.sh
step "benchmarks build and run once (tiny iteration counts)"
bash scripts/bench.sh --quick
step "constant-time comparisons (callgrind instruction counts)"
bash scripts/ct-check.sh
step "fuzz targets, smoke run (scripts/fuzz.sh --full runs 10M executions each)"
bash scripts/fuzz.sh --smoke
