#!/usr/bin/env bash
# Browser and multi-instance tests:
#  * e2e/tests/sdk.test.mjs   the real supertokens-website 4.2.0 SDK (bundled with
#                             esbuild) in headless Chromium against tessera-axum
#  * e2e/tests/sdk20.test.mjs the real supertokens-website 20.x SDK (npm alias
#                             supertokens-website-20) in cookie and header mode,
#                             against tessera-axum and then against a Django
#                             project (e2e/django_project)
#  * e2e/bearer-client.sh     a non-browser client (curl) in Bearer mode against the demo
#  * e2e/tests/review.test.mjs  findings of the outside review (logout CSRF, cookie tossing)
#  * e2e/tests/demo.test.mjs  the demo's own page, screenshots in artifacts/
#  * e2e/tests/demo-lifecycle.test.mjs  the demo with the grace window and client addresses: device list, convergence
#  * crates/tessera-demo/tests/multi_instance.rs
#                             two demo servers sharing one PostgreSQL database
#
# Installs what is missing: Debian's chromium (apt-get), node/npm (apt-get),
# the npm packages of e2e/ (npm ci). Needs PostgreSQL like scripts/test-all.sh
# (TESSERA_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test).
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export TESSERA_TEST_POSTGRES_URL="${TESSERA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

apt_updated=""
apt_install() {
  if [[ -z "$apt_updated" ]]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

step "browser and tools"
if [[ ! -x /usr/bin/chromium ]]; then
  echo "installing chromium (apt-get)"
  apt_install chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs and npm (apt-get)"
  apt_install nodejs npm
fi
/usr/bin/chromium --version 2>/dev/null
echo "node $(node --version)"
if [[ ! -d e2e/node_modules/supertokens-website || ! -d e2e/node_modules/supertokens-website-20 \
      || ! -d e2e/node_modules/playwright-core \
      || ! -d e2e/node_modules/esbuild ]]; then
  echo "installing the npm packages of e2e/ (npm ci)"
  (cd e2e && npm ci --no-audit --no-fund)
fi
grep -q '"version": "4.2.0"' e2e/node_modules/supertokens-website/package.json \
  || { echo "e2e/node_modules has another supertokens-website than 4.2.0; run npm ci in e2e/" >&2; exit 1; }
grep -q '"version": "20\.' e2e/node_modules/supertokens-website-20/package.json \
  || { echo "e2e/node_modules/supertokens-website-20 is not a 20.x release; run npm ci in e2e/" >&2; exit 1; }

step "build the demo and the SDK test server"
# Two commands: with --example, cargo would build only the example and not
# the demo's binary.
cargo build -q -p tessera-demo --bin tessera-demo
cargo build -q -p tessera-axum --example sdk_test_server

step "browser tests (headless Chromium)"
mkdir -p artifacts
(cd e2e && node --test tests/sdk.test.mjs tests/sdk20.test.mjs tests/review.test.mjs tests/demo.test.mjs tests/demo-lifecycle.test.mjs)

step "supertokens-website 20.x against a Django project (e2e/django_project), cookie and header mode"
# The Python of a virtual environment with tessera-django installed:
# E2E_DJANGO_PYTHON, else the newest one scripts/test-django.sh made (it runs
# just before this script in scripts/test-all.sh, so the wheel is this
# checkout's); if there is none, that script builds one (newest pair, SQLite).
django_python() {
  if [[ -n "${E2E_DJANGO_PYTHON:-}" ]]; then echo "$E2E_DJANGO_PYTHON"; return; fi
  local venvs=${TESSERA_DJANGO_VENVS:-$PWD/target/django-venvs} py
  for py in $(ls -d "$venvs"/dj*/bin/python 2>/dev/null | sort -r); do
    if "$py" -c 'import tessera_django._native' 2>/dev/null; then echo "$py"; return; fi
  done
}
DJANGO_PY=$(django_python)
if [[ -z "$DJANGO_PY" ]]; then
  echo "no virtual environment with tessera-django; building one (scripts/test-django.sh, Django 6.x / Python 3.13, SQLite)"
  TESSERA_DJANGO_MATRIX="6.x/3.13=sqlite" bash scripts/test-django.sh >target/e2e-django-build.log 2>&1 \
    || { tail -40 target/e2e-django-build.log >&2; exit 1; }
  DJANGO_PY=$(django_python)
fi
[[ -n "$DJANGO_PY" ]] || { echo "could not find or build a virtual environment with tessera-django" >&2; exit 1; }
echo "Django from $DJANGO_PY: $("$DJANGO_PY" -c 'import django, tessera_django; print("Django", django.__version__)')"
(cd e2e && E2E_DJANGO_PYTHON="$DJANGO_PY" node --test tests/sdk20.test.mjs)

step "a non-browser client in Bearer mode (curl) against the demo"
bash e2e/bearer-client.sh "$CARGO_TARGET_DIR/debug/tessera-demo"
echo "screenshots: $(ls artifacts/*.png | tr '\n' ' ')"

step "multi-instance test (two demo servers, one PostgreSQL database)"
TESSERA_REQUIRE_ALL_BACKENDS=1 cargo test -q -p tessera-demo --test multi_instance
