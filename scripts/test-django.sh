#!/usr/bin/env bash
# The Django package's tests over the supported matrix.
#
# Builds tessera-django (the PyO3 crate crates/tessera-python) ONCE with
# maturin, as one abi3 wheel (CPython >= 3.10, see Cargo.toml), checks the
# type stubs, then, for each (Django, Python) pair, creates a virtual
# environment, installs that Django and the same wheel into it, and runs the
# pytest-django suite on each of the pair's databases:
#
#   sqlite       Django's usual test setting (in-memory SQLite): Tessera's own
#                in-memory database
#   sqlite-file  a SQLite file project (Tessera's file beside Django's)
#   postgres     TESSERA_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test)
#   mysql        TESSERA_TEST_MYSQL_URL    (default mysql://root@127.0.0.1:3306/test), MariaDB here
#
# The matrix (TESSERA_DJANGO_MATRIX, entries DJANGO/PYTHON=BACKEND,BACKEND,...)
# defaults to: the whole suite on every backend for the newest pair
# (Django 6.x on Python 3.13), and every other pair Django supports among
# Python 3.11-3.13 on SQLite (in memory) and PostgreSQL. That keeps CI time
# sensible: one wheel build, and the slow MariaDB and SQLite-file runs once.
# PostgreSQL is reached through psycopg 3 on the Python 3.13 pairs and
# through psycopg2 on the others, so both drivers are tested on each Django.
#
# TESSERA_DJANGO_BACKENDS (optional) keeps only those backends in every pair
# (TESSERA_DJANGO_BACKENDS=sqlite: the whole matrix on SQLite, quickly).
#
# Interpreters are /root/.pyenv/versions/X.Y.*/bin/python, or
# TESSERA_PYTHON_3_13 (etc.) if set. A pair whose interpreter is missing
# FAILS the run: it is never skipped.
#
# pytest-django creates and drops the test database tessera_django_pytest on
# the servers. A server that cannot be reached fails the run.
#
# Environment: TESSERA_DJANGO_VENVS (default target/django-venvs),
# TESSERA_DJANGO_MATRIX, TESSERA_DJANGO_BACKENDS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CRATE=$ROOT/crates/tessera-python
VENVS=${TESSERA_DJANGO_VENVS:-$ROOT/target/django-venvs}
WHEELS=$ROOT/target/django-wheels
ALL_BACKENDS="sqlite,sqlite-file,postgres,mysql"
DEFAULT_MATRIX="6.x/3.13=$ALL_BACKENDS 6.x/3.12=sqlite,postgres 5.2/3.13=sqlite,postgres 5.2/3.12=sqlite,postgres 5.2/3.11=sqlite,postgres 4.2/3.12=sqlite,postgres 4.2/3.11=sqlite,postgres"
MATRIX=${TESSERA_DJANGO_MATRIX:-$DEFAULT_MATRIX}
ONLY_BACKENDS=${TESSERA_DJANGO_BACKENDS:-}
export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export TESSERA_TEST_MYSQL_URL="${TESSERA_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/test}"
PIP=(-m pip install --quiet --disable-pip-version-check)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The pip requirement of a Django series in the matrix.
django_spec() {
  case "$1" in
    4.2) echo "Django>=4.2,<4.3" ;;
    5.2) echo "Django>=5.2,<5.3" ;;
    6.x) echo "Django>=6.0,<7" ;;
    *) echo "unknown Django series '$1' in TESSERA_DJANGO_MATRIX (4.2, 5.2 or 6.x)" >&2; return 1 ;;
  esac
}

# The interpreter for Python X.Y: TESSERA_PYTHON_X_Y, else pyenv's newest X.Y.
find_python() {
  local var="TESSERA_PYTHON_${1//./_}" candidate
  if [ -n "${!var:-}" ]; then
    [ -x "${!var}" ] && echo "${!var}" && return 0
    return 1
  fi
  for candidate in $(ls -d /root/.pyenv/versions/"$1".* 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/bin/python" ]; then
      echo "$candidate/bin/python"
      return 0
    fi
  done
  return 1
}

pg_driver() { [ "$1" = 3.13 ] && echo psycopg || echo psycopg2; }

# The venv of a pair, created once and brought up to date on every run.
make_venv() {
  local venv=$1 python=$2 django=$3 driver=$4
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
  fi
  local driver_req="psycopg2-binary>=2.9,<3"
  [ "$driver" = psycopg ] && driver_req="psycopg[binary]>=3.1,<4"
  "$venv/bin/python" "${PIP[@]}" -r "$CRATE/requirements-test.txt" "$(django_spec "$django")" "$driver_req"
  # One driver per venv: Django prefers psycopg 3 when both are importable.
  if [ "$driver" = psycopg ]; then
    "$venv/bin/python" -m pip uninstall --quiet -y psycopg2-binary psycopg2 >/dev/null 2>&1 || true
  else
    "$venv/bin/python" -m pip uninstall --quiet -y psycopg psycopg-binary >/dev/null 2>&1 || true
  fi
}

# Parse the matrix first, so that a missing interpreter fails before any work.
declare -a PAIRS=()
missing=0
for entry in $MATRIX; do
  pair=${entry%%=*}
  backends=${entry#*=}
  [ "$backends" = "$entry" ] && backends=$ALL_BACKENDS
  django=${pair%%/*}
  python=${pair#*/}
  django_spec "$django" >/dev/null
  case "$django/$python" in
    6.x/3.1[01] | 4.2/3.1[3-9]) echo "Django $django does not support Python $python: fix TESSERA_DJANGO_MATRIX" >&2; exit 1 ;;
  esac
  if [ -n "$ONLY_BACKENDS" ]; then
    kept=""
    for b in ${backends//,/ }; do
      case " $ONLY_BACKENDS " in *" $b "*) kept="$kept,$b" ;; esac
    done
    backends=${kept#,}
  fi
  [ -z "$backends" ] && continue
  if ! find_python "$python" >/dev/null; then
    echo "MISSING: Python $python for Django $django (neither TESSERA_PYTHON_${python//./_} nor /root/.pyenv/versions/$python.*/bin/python)" >&2
    missing=1
  fi
  PAIRS+=("$django $python $backends")
done
if [ "$missing" != 0 ]; then
  echo "required interpreters are missing: failing, not skipping" >&2
  exit 1
fi
[ "${#PAIRS[@]}" -gt 0 ] || { echo "TESSERA_DJANGO_MATRIX/TESSERA_DJANGO_BACKENDS select nothing" >&2; exit 1; }

# The first pair's venv (the newest by default) builds the wheel and checks the stubs.
read -r first_django first_python _ <<<"${PAIRS[0]}"
TOOLS=$VENVS/dj$first_django-py$first_python
step "virtual environment $TOOLS (Django $first_django, Python $first_python) builds the wheel"
make_venv "$TOOLS" "$(find_python "$first_python")" "$first_django" "$(pg_driver "$first_python")"
"$TOOLS/bin/python" "${PIP[@]}" "maturin>=1.5,<2" "mypy>=1.8"

step "build the abi3 wheel with maturin (release), once"
rm -rf "$WHEELS"
"$TOOLS/bin/maturin" build --release --quiet \
  --manifest-path "$CRATE/Cargo.toml" --interpreter "$TOOLS/bin/python" --out "$WHEELS"
WHEEL=$(ls "$WHEELS"/tessera_django-*.whl)
echo "$WHEEL"
case "$WHEEL" in *-cp310-abi3-*) ;; *) echo "not an abi3 wheel: $WHEEL" >&2; exit 1 ;; esac

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
declare -a SUMMARY=()
failed=0
for pair in "${PAIRS[@]}"; do
  read -r django python backends <<<"$pair"
  venv=$VENVS/dj$django-py$python
  driver=$(pg_driver "$python")
  step "Django $django on Python $python ($venv)"
  make_venv "$venv" "$(find_python "$python")" "$django" "$driver"
  "$venv/bin/python" "${PIP[@]}" --force-reinstall --no-deps "$WHEEL"
  versions=$("$venv/bin/python" -c 'import django, platform; print(django.__version__, platform.python_version())')
  if [ "$venv" = "$TOOLS" ]; then
    step "type stubs: stubtest (native module) and mypy (package)"
    "$venv/bin/python" -m mypy.stubtest tessera_django._native
    (cd "$CRATE/python" && "$venv/bin/python" -m mypy --cache-dir "$ROOT/target/mypy-cache" \
      --ignore-missing-imports --disallow-untyped-defs --warn-unused-ignores tessera_django)
  fi
  for backend in ${backends//,/ }; do
    step "pytest-django suite: Django $versions, $backend"
    log=$ROOT/target/django-tests-dj$django-py$python-$backend.log
    mkdir -p "$SCRATCH/$django-$python-$backend"
    # The installed wheel is what is tested (TESSERA_DJANGO_EXPECT_INSTALLED):
    # the source tree's python/ is not on sys.path.
    started=$SECONDS
    if (cd "$CRATE" && TESSERA_DJANGO_DB=$backend TESSERA_DJANGO_EXPECT_INSTALLED=1 TESSERA_DJANGO_EXPECT_ABI3=1 \
      TESSERA_DJANGO_EXPECT_VERSIONS="$versions" TESSERA_DJANGO_EXPECT_PG_DRIVER=$driver \
      TESSERA_DJANGO_SQLITE_PATH="$SCRATCH/$django-$python-$backend/db.sqlite3" \
      "$venv/bin/python" -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$log"); then
      result=ok
    else
      result=FAILED
      failed=1
    fi
    pgd="-"
    [ "$backend" = postgres ] && pgd=$driver
    SUMMARY+=("$(printf '| %-7s | %-7s | %-11s | %-8s | %-6s | %4ss | %s' "${versions%% *}" "${versions##* }" \
      "$backend" "$pgd" "$result" "$((SECONDS - started))" \
      "$(grep -E '(passed|failed|error)' "$log" | tail -n1 | tr -d '=' | sed 's/^ *//; s/ in [0-9.]*s.*$//')")")
  done
done

step "Django matrix (one wheel: $(basename "$WHEEL"))"
printf '| %-7s | %-7s | %-11s | %-8s | %-6s | %5s | %s\n' Django Python backend driver result time tests
printf '|---------|---------|-------------|----------|--------|-------|------\n'
printf '%s\n' "${SUMMARY[@]}"
exit "$failed"
