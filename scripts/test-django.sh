#!/usr/bin/env bash
# The Django package's tests: builds tessera-django (the PyO3 crate
# crates/tessera-python) with maturin in a virtual environment it creates,
# installs the wheel, checks the type stubs, and runs the pytest-django suite
# once per database:
#
#   sqlite       Django's usual test setting (in-memory SQLite): Tessera's own
#                in-memory database
#   sqlite-file  a SQLite file project (Tessera's file beside Django's)
#   postgres     TESSERA_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#   mysql        TESSERA_TEST_MYSQL_URL    (default mysql://root@127.0.0.1:3306/test), MariaDB here
#
# pytest-django creates and drops the test database tessera_django_pytest on
# the servers. A server that cannot be reached fails the run.
#
# Environment: TESSERA_DJANGO_VENV (default target/django-venv),
# TESSERA_PYTHON (interpreter that creates it; default python3),
# TESSERA_DJANGO_BACKENDS (default "sqlite sqlite-file postgres mysql").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CRATE=$ROOT/crates/tessera-python
VENV=${TESSERA_DJANGO_VENV:-$ROOT/target/django-venv}
WHEELS=$ROOT/target/django-wheels
BACKENDS=${TESSERA_DJANGO_BACKENDS:-sqlite sqlite-file postgres mysql}
export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TESSERA_TEST_MYSQL_URL="${TESSERA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# An interpreter that can create a virtual environment (Debian's system
# python3 cannot without the python3-venv package).
pick_python() {
  local candidate
  for candidate in ${TESSERA_PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10 python3.9; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import ensurepip, sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "no Python >= 3.9 with venv/ensurepip found; set TESSERA_PYTHON (Debian: apt-get install python3-venv)" >&2
  return 1
}

step "virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  PYTHON=$(pick_python)
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" --version
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$CRATE/requirements-test.txt"

step "build the wheel with maturin (release) and install it"
rm -rf "$WHEELS"
"$VENV/bin/maturin" build --release --quiet \
  --manifest-path "$CRATE/Cargo.toml" --interpreter "$VENV/bin/python" --out "$WHEELS"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$WHEELS"/tessera_django-*.whl

step "type stubs: stubtest (native module) and mypy (package)"
"$VENV/bin/python" -m mypy.stubtest tessera_django._native
(cd "$CRATE/python" && "$VENV/bin/python" -m mypy --cache-dir "$ROOT/target/mypy-cache" \
  --ignore-missing-imports --disallow-untyped-defs --warn-unused-ignores tessera_django)

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
declare -a SUMMARY=()
failed=0
for backend in $BACKENDS; do
  step "pytest-django suite on $backend"
  log=$ROOT/target/django-tests-$backend.log
  mkdir -p "$SCRATCH/$backend"
  # The installed wheel is what is tested (TESSERA_DJANGO_EXPECT_INSTALLED):
  # the source tree's python/ is not on sys.path.
  if (cd "$CRATE" && TESSERA_DJANGO_DB=$backend TESSERA_DJANGO_EXPECT_INSTALLED=1 \
    TESSERA_DJANGO_SQLITE_PATH="$SCRATCH/$backend/db.sqlite3" \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$log"); then
    result=ok
  else
    result=FAILED
    failed=1
  fi
  SUMMARY+=("$(printf '%-12s %-7s %s' "$backend" "$result" "$(grep -E '(passed|failed|error)' "$log" | tail -n1 | tr -d '=')")")
done

step "backends the Django suite ran on"
printf '%s\n' "${SUMMARY[@]}"
exit "$failed"
