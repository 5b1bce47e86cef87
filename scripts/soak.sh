#!/usr/bin/env bash
# The long versions of the hardening tests (SECURITY.md). CI runs the same
# tests with short settings through scripts/test-all.sh; this script turns the
# knobs up:
#
#   races       64-way refresh races, 1,000 rounds per backend
#   model       attacker/client property test, 40 seeds per configuration
#   crash       demo server SIGKILLed under load, 200 restart cycles
#   load        64 clients verifying and refreshing for 60 s
#   faults      private PostgreSQL and MariaDB stopped/killed mid-load, 20 cycles, and frozen (SIGSTOP) 10
#   galera      the 3-node Galera cluster (scripts/galera.sh): 64-way races over
#               three nodes, 200 rounds; node faults (SIGKILL + restart,
#               SIGSTOP + SIGCONT) under load, 10 cycles; the protocol suites on
#               the cluster with the knobs above; the demo's crash soak, restarted
#               on the next node after each kill
#   fuzz        each cargo-fuzz target for 10 million executions
#
#   bash scripts/soak.sh              # everything but fuzz (about an hour)
#   bash scripts/soak.sh races crash  # only some parts
#   bash scripts/soak.sh fuzz         # the 10M-execution fuzz runs
#
# Needs the same local PostgreSQL and MariaDB as the test command; each knob
# can be overridden from the environment. Logs go to target/soak/.
set -euo pipefail
cd "$(dirname "$0")/.."

export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TESSERA_TEST_MYSQL_URL="${TESSERA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
export TESSERA_REQUIRE_ALL_BACKENDS=1
export TESSERA_SOAK_RACE_ROUNDS="${TESSERA_SOAK_RACE_ROUNDS:-1000}"
export TESSERA_SOAK_MODEL_SEEDS="${TESSERA_SOAK_MODEL_SEEDS:-40}"
export TESSERA_SOAK_CRASH_CYCLES="${TESSERA_SOAK_CRASH_CYCLES:-200}"
export TESSERA_SOAK_LOAD_SECS="${TESSERA_SOAK_LOAD_SECS:-60}"
export TESSERA_SOAK_FAULT_CYCLES="${TESSERA_SOAK_FAULT_CYCLES:-20}"
export TESSERA_SOAK_GALERA_ROUNDS="${TESSERA_SOAK_GALERA_ROUNDS:-200}"
export TESSERA_SOAK_GALERA_FAULT_CYCLES="${TESSERA_SOAK_GALERA_FAULT_CYCLES:-10}"

galera_soak() {
  bash scripts/galera.sh start
  export TESSERA_TEST_GALERA_URLS="$(bash scripts/galera.sh urls)" TESSERA_REQUIRE_GALERA=1
  cargo test --release -p tessera-sqlx --test protocol -- galera:: --nocapture
  cargo test --release -p tessera-sqlx --test galera -- --nocapture
  TESSERA_GALERA_FAULTS=1 cargo test --release -p tessera-sqlx --test galera node_faults -- --nocapture --test-threads=1
  TESSERA_SOAK_BACKENDS=galera cargo test --release -p tessera-demo --test crash -- --nocapture
}

parts=("$@")
if [ ${#parts[@]} -eq 0 ]; then
  parts=(races model crash load faults galera)
fi

mkdir -p target/soak
run() {
  local name=$1
  shift
  printf '\n\033[1m== soak %s\033[0m (log: target/soak/%s.log)\n' "$name" "$name"
  local start=$SECONDS
  if ! "$@" >"target/soak/$name.log" 2>&1; then
    grep -E 'panicked|FAILED|^error' -A10 "target/soak/$name.log" | head -60 >&2
    echo "soak $name FAILED after $((SECONDS - start)) s" >&2
    exit 1
  fi
  grep -E '^(races|properties \(|crash-soak|load-soak|faults|galera (races|faults))|^test result' "target/soak/$name.log" | grep -v ' 0 passed' || true
  echo "soak $name passed in $((SECONDS - start)) s"
}

for part in "${parts[@]}"; do
  case "$part" in
    races) run races cargo test --release -p tessera-sqlx --test protocol -- races:: --nocapture ;;
    model) run model cargo test --release -p tessera-sqlx --test protocol -- properties:: --nocapture ;;
    crash) run crash cargo test --release -p tessera-demo --test crash -- --nocapture ;;
    load) run load cargo test --release -p tessera-demo --test load -- --nocapture ;;
    faults) run faults cargo test --release -p tessera-sqlx --test faults -- --nocapture --test-threads=1 ;;
    galera) run galera galera_soak ;;
    fuzz) run fuzz bash scripts/fuzz.sh --full ;;
    *)
      echo "unknown part '$part' (races model crash load faults galera fuzz)" >&2
      exit 2
      ;;
  esac
done
