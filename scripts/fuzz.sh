#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets of fuzz/ (the Tessera core's token,
# cookie and anti-CSRF parsing; see crates/tessera-testkit/src/fuzzing.rs).
#
#   bash scripts/fuzz.sh --smoke [seconds]   every target briefly (default 20 s each), as CI does
#   bash scripts/fuzz.sh --full [runs]       every target for [runs] executions (default 10,000,000)
#   bash scripts/fuzz.sh --full [runs] access_token anti_csrf   only the targets named
#
# Exits non-zero if a target fails to build or finds a crash (a panic, a
# failed property assertion, a sanitizer report, a timeout or running out of
# memory); the crashing input is left in fuzz/artifacts/<target>/.
#
# The committed seeds in fuzz/corpus/<target>/ are only read: new inputs go to
# a temporary directory (--smoke) or to fuzz/target/corpus/<target>/ (--full,
# kept between runs, not committed).
#
# Builds without a sanitizer unless TESSERA_FUZZ_SANITIZER names one
# (address, leak, memory, thread).
#
# Needs cargo-fuzz (installed here if missing) and a nightly compiler; without
# one, the stable compiler is used with RUSTC_BOOTSTRAP=1 (libFuzzer's
# instrumentation needs unstable flags). TESSERA_FUZZ_TOOLCHAIN overrides the
# choice (e.g. `stable`).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(access_token refresh_token cookie_header anti_csrf)

mode="${1:---smoke}"
case "$mode" in
  --smoke) amount="${2:-20}" ;;
  --full) amount="${2:-10000000}" ;;
  *)
    echo "usage: $0 --smoke [seconds] | --full [runs] [target...]" >&2
    exit 2
    ;;
esac
[[ "$amount" =~ ^[0-9]+$ ]] || { echo "not a number: $amount" >&2; exit 2; }
shift $(($# >= 2 ? 2 : $#))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

# A toolchain that accepts libFuzzer's flags.
toolchain="${TESSERA_FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=nightly
  else
    toolchain=stable
  fi
fi
# No sanitizer by default: the core forbids unsafe code, and AddressSanitizer
# makes these targets ~15x slower (TESSERA_FUZZ_SANITIZER=address to use it).
sanitizer="${TESSERA_FUZZ_SANITIZER:-none}"
# One build directory per toolchain and sanitizer, so that they do not
# rebuild each other's.
if [ "$sanitizer" = none ]; then target_dir=target/nosan; else target_dir="target/$sanitizer"; fi
if [ "$toolchain" != nightly ]; then
  echo "fuzz.sh: using the $toolchain toolchain with RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
  target_dir="$target_dir-$toolchain"
fi
build_opts=(-s "$sanitizer" --target-dir "$target_dir")
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz builds into fuzz/target; a CARGO_TARGET_DIR meant for the
# workspace would mix the instrumented build into it.
unset CARGO_TARGET_DIR

cd fuzz
echo "fuzz.sh: $(rustup run "$toolchain" rustc --version), $(cargo fuzz --version)"
for t in "${targets[@]}"; do
  cargo "+$toolchain" fuzz build "${build_opts[@]}" "$t"
done

failed=()
for t in "${targets[@]}"; do
  [ -d "corpus/$t" ] || { echo "no seed corpus fuzz/corpus/$t" >&2; exit 2; }
  if [ "$mode" = --smoke ]; then
    work="$(mktemp -d)"
    limit=(-max_total_time="$amount")
  else
    work="target/corpus/$t"
    mkdir -p "$work"
    limit=(-runs="$amount")
  fi
  mkdir -p "artifacts/$t"
  log="$target_dir/${mode#--}-$t.log"
  echo
  echo "== $t ($mode ${amount}$([ "$mode" = --smoke ] && echo ' s' || echo ' runs'))"
  start=$(date +%s)
  # The first corpus directory receives new inputs; the seeds are only read.
  if cargo "+$toolchain" fuzz run "${build_opts[@]}" "$t" "$work" "corpus/$t" -- \
    "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" 2>"$log"; then
    status=0
  else
    status=$?
  fi
  end=$(date +%s)
  grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|INFO: seed corpus' "$log" || true
  echo "wall time: $((end - start)) s; corpus directory $work: $(find "$work" -type f | wc -l) files"
  if [ "$status" -ne 0 ]; then
    echo "!! $t FAILED (exit $status); the end of its log (fuzz/$log):" >&2
    tail -n 60 "$log" >&2
    ls -l "artifacts/$t" >&2 || true
    failed+=("$t")
  fi
  if [ "$mode" = --smoke ]; then
    rm -rf "$work"
  fi
done

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${targets[*]}: no crash"
