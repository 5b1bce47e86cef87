#!/usr/bin/env bash
# A non-browser client in Bearer mode (curl, as a mobile app or an API
# client would talk) against the demo (crates/tessera-demo), through the
# flows the browser tests cover: sign up / sign in with `st-auth-mode:
# header`, a protected GET and PUT with `Authorization: Bearer` and no
# anti-CSRF header, expiry → refresh with the refresh token as a bearer
# token → retry, a revoked session, theft (a superseded refresh token used
# again), sign out. docs/PROTOCOL.md §9.
#
#   bash e2e/bearer-client.sh [path/to/tessera-demo]
#
# Exits non-zero at the first answer that is not the expected one.
set -euo pipefail
DEMO="${1:-target/debug/tessera-demo}"
command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is required" >&2; exit 1; }

dir=$(mktemp -d)
log="$dir/demo.log"
"$DEMO" --database "sqlite://$dir/demo.sqlite" --listen 127.0.0.1:0 --access-token-secs 2 serve >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 300); do
  B=$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's/listening on //' || true)
  [[ -n "$B" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$B" ]] || { echo "the demo did not start" >&2; cat "$log" >&2; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }
# req METHOD PATH [curl args...]: response headers in $dir/h, body in $dir/b,
# status in $status.
req() {
  local method=$1 path=$2; shift 2
  status=$(curl -s -o "$dir/b" -D "$dir/h" -w '%{http_code}' -X "$method" "$B$path" "$@")
  tr -d '\r' <"$dir/h" >"$dir/h2" && mv "$dir/h2" "$dir/h"
}
header() { grep -i "^$1:" "$dir/h" | head -1 | cut -d' ' -f2- || true; }
expect() { [[ "$status" == "$1" ]] || fail "$2: status $status, body $(cat "$dir/b")"; }
json='content-type: application/json'

# -- sign up and sign in in header mode ---------------------------------------
req POST /api/signup -H 'st-auth-mode: header' -H "$json" -d '{"username":"mobile","password":"correct horse battery"}'
expect 200 "sign-up"
AT=$(header st-access-token); RT=$(header st-refresh-token); FT=$(header front-token)
[[ -n "$AT" && -n "$RT" && -n "$FT" ]] || fail "sign-up without header-mode tokens: $(cat "$dir/h")"
grep -qi '^set-cookie:' "$dir/h" && fail "header mode set a cookie"
[[ -z "$(header anti-csrf)" ]] || fail "header mode sent an anti-CSRF token"
[[ $(echo "$FT" | base64 -d | jq -r .uid) == "$(jq -r .userId "$dir/b")" ]] || fail "front token uid"
ok "sign-up with st-auth-mode: header answers st-access-token, st-refresh-token, front-token and no cookie"


# -- protected requests without anti-CSRF ------------------------------------
req GET /api/me -H "Authorization: Bearer $AT"
expect 200 "GET /api/me with a bearer token"
[[ $(jq -r .jwtPayload.username "$dir/b") == mobile ]] || fail "GET /api/me body $(cat "$dir/b")"
req PUT /api/me/info -H "Authorization: Bearer $AT" -H "$json" -d '{"info":{"theme":"dark"}}'
expect 200 "PUT /api/me/info with a bearer token and no anti-CSRF header"
req PUT /api/me/info -H "$json" -d '{"info":{}}'
expect 401 "PUT /api/me/info without a token"
ok "GET /api/me and PUT /api/me/info with Authorization: Bearer, no anti-CSRF header"

# -- expiry, refresh with the bearer refresh token, retry ----------------------
sleep 2.7
req GET /api/me -H "Authorization: Bearer $AT"
expect 401 "an expired access token"
[[ $(jq -r .error "$dir/b") == try_refresh_token ]] || fail "expired: $(cat "$dir/b")"
R0=$RT
req POST /auth/session/refresh -H "Authorization: Bearer $RT" -H 'st-auth-mode: header'
expect 200 "refresh with the refresh token as a bearer token"
AT=$(header st-access-token); RT=$(header st-refresh-token)
[[ -n "$AT" && -n "$RT" && "$RT" != "$R0" ]] || fail "refresh without new tokens"
grep -qi '^set-cookie:' "$dir/h" && fail "the header-mode refresh set a cookie"
req GET /api/me -H "Authorization: Bearer $AT"
expect 200 "the retry with the new access token"
[[ $(jq -r .sessionInfo.theme "$dir/b") == dark ]] || fail "session info lost: $(cat "$dir/b")"
# The first use promoted the new refresh token and sent a fresh access token.
NEW=$(header st-access-token)
[[ -n "$NEW" ]] && AT=$NEW
ok "expiry → 401 try_refresh_token → refresh with Authorization: Bearer <refresh token> → retry"

# -- theft: the superseded refresh token used again ----------------------------
req POST /auth/session/refresh -H "Authorization: Bearer $R0"
expect 401 "a superseded refresh token"
[[ $(jq -r .error "$dir/b") == token_theft_detected ]] || fail "theft: $(cat "$dir/b")"
[[ $(header front-token) == remove ]] || fail "theft without front-token: remove"
req POST /auth/session/refresh -H "Authorization: Bearer $RT"
expect 401 "the current refresh token after theft (session revoked)"
[[ $(header front-token) == remove ]] || fail "revoked without front-token: remove"
ok "theft: a superseded refresh token → token_theft_detected, the session revoked"

# -- a revoked session ---------------------------------------------------------
# Two sessions of the user (two devices); one revokes the other.
req POST /api/signin -H 'st-auth-mode: header' -H "$json" -d '{"username":"mobile","password":"correct horse battery"}'
expect 200 "sign-in"
AT2=$(header st-access-token); RT2=$(header st-refresh-token)
[[ -n "$AT2" && -n "$RT2" ]] || fail "sign-in without header-mode tokens"
HANDLE2=$(jq -r .sessionHandle "$dir/b")
ok "sign-in with st-auth-mode: header"
req POST /api/signin -H 'st-auth-mode: header' -H "$json" -d '{"username":"mobile","password":"correct horse battery"}'
expect 200 "sign-in"
AT3=$(header st-access-token)
req DELETE "/api/sessions/$HANDLE2" -H "Authorization: Bearer $AT3"
expect 200 "revoking another session"
req GET /api/me -H "Authorization: Bearer $AT2"
expect 401 "the revoked session"
[[ $(jq -r .error "$dir/b") == unauthorized ]] || fail "revoked: $(cat "$dir/b")"
[[ $(header front-token) == remove ]] || fail "revoked without front-token: remove"
req POST /auth/session/refresh -H "Authorization: Bearer $RT2"
expect 401 "refreshing the revoked session"
ok "a revoked session: 401 unauthorized and front-token: remove, its refresh refused"

# -- sign out ------------------------------------------------------------------
req POST /auth/signout -H "Authorization: Bearer $AT3" -H 'rid: session'
expect 200 "sign-out"
[[ $(jq -r .status "$dir/b") == OK ]] || fail "sign-out body $(cat "$dir/b")"
[[ $(header front-token) == remove ]] || fail "sign-out without front-token: remove"
[[ -n "$(grep -i '^st-access-token:' "$dir/h")" ]] || fail "sign-out without an emptied st-access-token"
req GET /api/sessions -H "Authorization: Bearer $AT3"
expect 401 "after sign-out"
ok "sign-out: 200 {\"status\":\"OK\"}, front-token: remove, the session gone"
echo "bearer client: all flows passed"
