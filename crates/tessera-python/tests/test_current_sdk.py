"""The current supertokens-website SDK's protocol and Bearer clients
(``SUPER_TOKENS["CURRENT_SDK"]``, docs/PROTOCOL.md §9) through Django.

A client nobody here wrote, httpx, talks real HTTP to Django's threaded
live server: sign in, protected requests, access-token expiry and refresh,
a revoked session, theft, sign-out, in header mode (``Authorization:
Bearer``) and in the SDK's cookie mode. The reference profile (4.2.0) keeps
its exact behaviour beside it. The real 20.x SDK in Chromium against a
Django project is e2e/tests/sdk20.test.mjs (run by scripts/test-browser.sh).
"""

import base64
import json

import httpx
import pytest
from django.core.checks import run_checks
from django.http import HttpResponse
from django.test import RequestFactory

from tessera_django import _state, conf, supertokens
from tessera_django.exceptions import SuperTokensGeneralException

pytestmark = pytest.mark.django_db(transaction=True)

ACCESS_SECS = 60
REFRESH = "/auth/session/refresh"
SIGNOUT = "/auth/signout"


@pytest.fixture
def current(settings):
    settings.SUPER_TOKENS = {
        "CURRENT_SDK": {},
        "COOKIE_DOMAIN": None,
        "COOKIE_SECURE": False,
        "ACCESS_TOKEN_VALIDITY": ACCESS_SECS,
    }
    settings.ROOT_URLCONF = "testproject.urls_current"
    return settings


def front_token(response):
    """The decoded front-token header (standard base64 of JSON)."""
    value = response.headers["front-token"]
    return json.loads(base64.b64decode(value))


class BearerClient:
    """An API client in header mode: it keeps the tokens the server sends in
    st-access-token / st-refresh-token and sends them as Bearer tokens."""

    def __init__(self, base):
        self.http = httpx.Client(base_url=base, timeout=30)
        self.access = None
        self.refresh_token = None

    def take(self, response):
        if "st-access-token" in response.headers:
            self.access = response.headers["st-access-token"] or None
        if "st-refresh-token" in response.headers:
            self.refresh_token = response.headers["st-refresh-token"] or None
        return response

    def sign_in(self, user_id, payload=None, info=None):
        body = {"user_id": user_id, "payload": payload, "info": info}
        return self.take(self.http.post("/sign-in", json=body, headers={"st-auth-mode": "header"}))

    def call(self, method, path, token=None):
        token = token if token is not None else self.access
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.take(self.http.request(method, path, headers=headers))

    def refresh(self, token=None):
        token = token if token is not None else self.refresh_token
        headers = {"authorization": f"Bearer {token}", "st-auth-mode": "header", "rid": "session"}
        return self.take(self.http.post(REFRESH, headers=headers))


def handles(user_id):
    return supertokens.get_all_session_handles_for_user(user_id)


def test_bearer_client_through_every_flow(current, live_server, clock, user_id):
    c = BearerClient(live_server.url)
    r = c.sign_in(user_id, payload={"role": "api"}, info={"counter": 0})
    assert r.status_code == 200, r.text
    # Header mode: tokens in headers, no cookie at all, no anti-CSRF token.
    assert "set-cookie" not in r.headers
    assert "anti-csrf" not in r.headers
    assert c.access.startswith("ey") and c.refresh_token
    ft = front_token(r)
    assert ft["uid"] == user_id and ft["up"] == {"role": "api"}
    expose = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"st-access-token", "st-refresh-token", "front-token"} <= expose
    assert "no-store" in r.headers["cache-control"]

    # A protected POST with the bearer token and no anti-CSRF header.
    r = c.call("POST", "/counter")
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": user_id, "counter": 1}
    assert c.call("POST", "/counter", token="").status_code == 401

    # The access token expires: try refresh, refresh, retry.
    clock.advance(ACCESS_SECS + 1)
    r = c.call("POST", "/counter")
    assert r.status_code == 401 and r.json() == {"message": "try refresh token"}
    old_refresh = c.refresh_token
    r = c.refresh()
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    assert c.refresh_token != old_refresh
    assert front_token(r)["uid"] == user_id
    r = c.call("POST", "/counter")
    assert r.status_code == 200 and r.json()["counter"] == 2, r.text

    # Sign out: revoked, tokens cleared in header mode.
    r = c.call("POST", SIGNOUT)
    assert r.status_code == 200 and r.json() == {"status": "OK"}, r.text
    assert r.headers["front-token"] == "remove"
    assert r.headers["st-access-token"] == "" and r.headers["st-refresh-token"] == ""
    assert handles(user_id) == []
    clock.advance(ACCESS_SECS + 1)
    assert c.refresh(token=old_refresh).status_code == 401


def test_bearer_revoked_session_refresh_is_unauthorised(current, live_server, clock, user_id):
    c = BearerClient(live_server.url)
    assert c.sign_in(user_id).status_code == 200
    assert c.call("GET", "/protected").status_code == 200
    supertokens.revoke_all_sessions_for_user(user_id)
    clock.advance(ACCESS_SECS + 1)
    r = c.call("GET", "/protected")
    assert r.status_code == 401 and r.json() == {"message": "try refresh token"}
    r = c.refresh()
    assert r.status_code == 401 and r.json() == {"message": "unauthorised"}
    # What the SDK reads as "the session is gone".
    assert r.headers["front-token"] == "remove"
    assert r.headers["st-access-token"] == "" and r.headers["st-refresh-token"] == ""
    assert "set-cookie" not in r.headers


def test_bearer_theft_of_a_refresh_token(current, live_server, clock, user_id):
    c = BearerClient(live_server.url)
    assert c.sign_in(user_id).status_code == 200
    stolen = c.refresh_token
    # The client rotates and uses its new access token (commits the child).
    assert c.refresh().status_code == 200
    assert c.call("GET", "/protected").status_code == 200
    # The thief replays the stolen parent elsewhere.
    thief = BearerClient(live_server.url)
    r = thief.refresh(token=stolen)
    assert r.status_code == 401 and r.json() == {"message": "token theft detected"}
    assert r.headers["front-token"] == "remove"
    assert handles(user_id) == []
    clock.advance(ACCESS_SECS + 1)
    assert c.refresh().status_code == 401


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer garbage",
        "Bearer    x.y.z",
        "Bearer " + "A" * 20000,
        "Bearer eyJhbGciOiJub25lIn0.e30.",
        "bearer \u00e9t\u00e9",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_malformed_authorization_is_refused_without_a_500(current, live_server, authorization):
    http = httpx.Client(base_url=live_server.url, timeout=30)
    raw = authorization.encode("utf-8")
    r = http.get("/protected", headers=[(b"authorization", raw)])
    assert r.status_code == 401, r.text
    r = http.post(REFRESH, headers=[(b"authorization", raw), (b"st-auth-mode", b"header")])
    assert r.status_code == 401, r.text


def test_the_sdks_cookie_mode(current, live_server, clock, user_id):
    http = httpx.Client(base_url=live_server.url, timeout=30)
    r = http.post("/sign-in", json={"user_id": user_id}, headers={"st-auth-mode": "cookie"})
    assert r.status_code == 200, r.text
    set_cookies = r.headers.get_list("set-cookie")
    names = {line.split("=", 1)[0] for line in set_cookies}
    assert names == {"sAccessToken", "sRefreshToken"}, set_cookies
    refresh_line = next(line for line in set_cookies if line.startswith("sRefreshToken="))
    assert f"Path={REFRESH}" in refresh_line and "HttpOnly" in refresh_line
    assert front_token(r)["uid"] == user_id
    anti_csrf = r.headers["anti-csrf"]

    mode = {"st-auth-mode": "cookie"}
    assert http.post("/counter", headers=mode).status_code == 401  # no anti-CSRF token
    r = http.post("/counter", headers={**mode, "anti-csrf": anti_csrf})
    assert r.status_code == 200 and r.json()["counter"] == 1, r.text

    clock.advance(ACCESS_SECS + 1)
    assert http.post("/counter", headers={**mode, "anti-csrf": anti_csrf}).status_code == 401
    r = http.post(REFRESH, headers={**mode, "rid": "session"})
    assert r.status_code == 200 and r.json() == {"status": "ok"}, r.text
    anti_csrf = r.headers["anti-csrf"]
    r = http.post("/counter", headers={**mode, "anti-csrf": anti_csrf})
    assert r.status_code == 200 and r.json()["counter"] == 2, r.text

    # Sign-out needs the anti-CSRF token (a POST with an ambient credential).
    assert http.post(SIGNOUT, headers=mode).status_code == 401
    assert len(handles(user_id)) == 1
    r = http.post(SIGNOUT, headers={**mode, "anti-csrf": anti_csrf})
    assert r.status_code == 200 and r.json() == {"status": "OK"}, r.text
    assert r.headers["front-token"] == "remove"
    cleared = {line.split("=", 1)[0]: line for line in r.headers.get_list("set-cookie")}
    assert set(cleared) == {"sAccessToken", "sRefreshToken"}
    assert all("1970" in line for line in cleared.values())
    assert handles(user_id) == []


def test_cookie_mode_unauthorised_clears_the_current_sdks_cookies(current, live_server, clock, user_id):
    """A view raises Unauthorized; the middleware's answer clears the tokens
    the way the request carried them (here the current SDK's cookies and
    front-token), not the reference profile's three cookies."""
    http = httpx.Client(base_url=live_server.url, timeout=30)
    r = http.post("/sign-in", json={"user_id": user_id}, headers={"st-auth-mode": "cookie"})
    assert r.status_code == 200
    supertokens.revoke_all_sessions_for_user(user_id)
    clock.advance(ACCESS_SECS + 1)
    r = http.post(REFRESH, headers={"st-auth-mode": "cookie"})
    assert r.status_code == 401 and r.json() == {"message": "unauthorised"}
    assert r.headers["front-token"] == "remove"
    cleared = {line.split("=", 1)[0]: line for line in r.headers.get_list("set-cookie")}
    assert set(cleared) == {"sAccessToken", "sRefreshToken"}, cleared
    assert f"Path={REFRESH}" in cleared["sRefreshToken"]
    assert "id-refresh-token" not in r.headers


def test_the_reference_profile_is_unchanged_beside_it(current, live_server, user_id):
    """A sign-in without st-auth-mode (supertokens-website 4.2.0 never sends
    it) still gets the reference library's three cookies and headers."""
    http = httpx.Client(base_url=live_server.url, timeout=30)
    r = http.post("/sign-in", json={"user_id": user_id})
    assert r.status_code == 200
    names = {line.split("=", 1)[0] for line in r.headers.get_list("set-cookie")}
    assert names == {"sAccessToken", "sRefreshToken", "sIdRefreshToken"}
    assert "front-token" not in r.headers and r.headers["id-refresh-token"]
    r = http.post("/protected", headers={"anti-csrf": r.headers["anti-csrf"]})
    assert r.status_code == 200, r.text


def test_header_mode_can_be_refused(current, settings, live_server, user_id):
    settings.SUPER_TOKENS = {**settings.SUPER_TOKENS, "CURRENT_SDK": {"HEADER": False}}
    c = BearerClient(live_server.url)
    r = c.sign_in(user_id)
    # The preference is honoured only within what is allowed: cookies.
    assert r.status_code == 200
    assert "st-access-token" not in r.headers
    assert {line.split("=", 1)[0] for line in r.headers.get_list("set-cookie")} == {
        "sAccessToken",
        "sRefreshToken",
    }
    # A bearer token is not read when header mode is off: the session's own
    # valid access token, sent as one by a client without cookies.
    assert len(supertokens.get_all_session_handles_for_user(user_id)) == 1
    access = c.http.cookies["sAccessToken"]
    assert c.http.get("/protected").status_code == 200  # through the cookie
    bare = httpx.Client(base_url=live_server.url, timeout=30)
    r = bare.get("/protected", headers={"authorization": f"Bearer {access}"})
    assert r.status_code == 401, r.text


def test_create_new_session_without_a_request_uses_the_default_transport(current, user_id):
    response = HttpResponse()
    supertokens.create_new_session(response, user_id)
    assert "sIdRefreshToken" in response.cookies  # the reference profile
    request = RequestFactory().post("/sign-in", HTTP_ST_AUTH_MODE="header")
    response = HttpResponse()
    supertokens.create_new_session(response, user_id, request=request)
    assert response["st-access-token"] and not response.cookies


def test_acreate_new_session_takes_the_request(current, user_id):
    import asyncio

    async def main():
        request = RequestFactory().post("/sign-in", HTTP_ST_AUTH_MODE="header")
        response = HttpResponse()
        await supertokens.acreate_new_session(response, user_id, {"a": 1}, request=request)
        return response

    response = asyncio.run(main())
    assert response["st-refresh-token"] and not response.cookies
    assert json.loads(base64.b64decode(response["front-token"]))["up"] == {"a": 1}


def test_settings_are_checked(settings):
    settings.SUPER_TOKENS = {"CURRENT_SDK": {"API_BASE": "/auth"}}
    with pytest.raises(SuperTokensGeneralException, match="API_BASE_PATH"):
        _state.get()
    settings.SUPER_TOKENS = {"CURRENT_SDK": {"COOKIE": False, "HEADER": False}}
    with pytest.raises(SuperTokensGeneralException, match="neither cookies nor headers"):
        _state.get()
    settings.SUPER_TOKENS = {"CURRENT_SDK": "yes"}
    with pytest.raises(SuperTokensGeneralException, match="CURRENT_SDK must be None or a dict"):
        _state.get()
    settings.SUPER_TOKENS = {"REFERENCE_PROFILE": False}
    with pytest.raises(SuperTokensGeneralException, match="no client profile"):
        _state.get()


@pytest.mark.parametrize("base", ["/auth", "auth", "/auth/", "/api/v1/auth", "/"])
def test_paths_match_the_core(settings, base):
    settings.SUPER_TOKENS = {"CURRENT_SDK": {"API_BASE_PATH": base}}
    assert conf.current_sdk_paths(conf.load().core) == _state.get().current_sdk_paths


def test_check_warns_when_the_refresh_path_is_not_routed(settings):
    settings.SUPER_TOKENS = {"CURRENT_SDK": {}}
    ids = {m.id for m in run_checks()}
    assert "tessera_django.W005" in ids
    settings.ROOT_URLCONF = "testproject.urls_current"
    ids = {m.id for m in run_checks()}
    assert "tessera_django.W005" not in ids
    settings.SUPER_TOKENS = {}
    assert "tessera_django.W005" not in {m.id for m in run_checks()}


def test_drf_authenticates_a_bearer_token(current, live_server, clock, user_id):
    c = BearerClient(live_server.url)
    assert c.sign_in(user_id, payload={"p": 1}, info={"k": "v"}).status_code == 200
    r = c.call("GET", "/api/me")
    assert r.status_code == 200, r.text
    assert r.json() == {"user_id": user_id, "payload": {"p": 1}, "info": {"k": "v"}}
    # An unsafe method needs no anti-CSRF token with a bearer token.
    r = c.http.post("/api/me", json={"k": "w"}, headers={"authorization": f"Bearer {c.access}"})
    assert r.status_code == 200, r.text
    assert c.call("GET", "/api/me", token="").status_code == 401
    clock.advance(ACCESS_SECS + 1)
    r = c.call("GET", "/api/me")
    assert r.status_code == 401, r.text
    assert c.refresh().status_code == 200
    assert c.call("GET", "/api/me").json()["info"] == {"k": "w"}
