"""The README's Django section, run as written.

Its code blocks marked ``<!-- tested: tests/test_readme.py (label) -->`` are
read from README.md when the tests run. The views, the CORS middleware and
the URLconf are executed into modules (``myapp.views``, ``myapp.cors``,
``readme_urls``) and driven through Django's test client with Django's CSRF
middleware enforcing its checks: sign-in, a protected GET, a POST with the
anti-csrf header, expiry → 401 → refresh → retry, the staff views, logout,
the CORS preflight, token theft in the logs, and the HTTPS settings."""

import logging
import logging.config
import pathlib
import re
import sys
import types

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.test import Client, override_settings

from tessera_django import _state, conf, supertokens

import support
from support import ACCESS, ID_REFRESH, REFRESH

README = pathlib.Path(__file__).resolve().parents[3] / "README.md"
MARK = re.compile(r"<!-- tested: tests/test_readme\.py \(([^)]+)\) -->\n```(\w+)\n(.*?)\n```", re.S)
FRONT_END = "http://localhost:3000"


def django_section():
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Django\n")
    return text[start : text.index("\n## ", start + 1)]


def blocks():
    return {label: code for label, _lang, code in MARK.findall(django_section())}


def settings_of(label):
    namespace = {}
    exec(compile(blocks()[label], f"README.md ({label})", "exec"), namespace)
    return namespace


def test_every_python_block_with_code_is_tested():
    """No view can be added to the README without this module running it."""
    section = django_section()
    marked = {code for _label, _lang, code in MARK.findall(section)}
    for code in re.findall(r"```python\n(.*?)\n```", section, re.S):
        if code not in marked:
            assert "def " not in code, f"an untested Python block defines something:\n{code}"
    assert {"settings, development", "settings, https", "views", "urls", "sdk init", "cors", "logging"} <= set(
        blocks()
    )


def _module(name, code, label):
    module = types.ModuleType(name)
    module.__file__ = f"README.md ({label})"
    exec(compile(code, module.__file__, "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def readme_app():
    code = blocks()
    saved = {name: sys.modules.get(name) for name in ("myapp", "myapp.views", "myapp.cors", "readme_urls")}
    package = types.ModuleType("myapp")
    package.__path__ = []
    sys.modules["myapp"] = package
    package.views = sys.modules["myapp.views"] = _module("myapp.views", code["views"], "views")
    package.cors = sys.modules["myapp.cors"] = _module("myapp.cors", code["cors"], "cors")
    sys.modules["readme_urls"] = _module("readme_urls", code["urls"], "urls")
    yield package
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module


@pytest.fixture
def app(readme_app):
    """The README's development settings, its middleware order and Django's
    CSRF middleware (which the views' csrf_exempt must get past)."""
    development = settings_of("settings, development")
    assert development["MIDDLEWARE"][-1] == "tessera_django.middleware.SuperTokensMiddleware"
    with override_settings(
        ROOT_URLCONF="readme_urls",
        MIDDLEWARE=[
            "myapp.cors.cors",
            "django.middleware.csrf.CsrfViewMiddleware",
            "tessera_django.middleware.SuperTokensMiddleware",
        ],
        SUPER_TOKENS=development["SUPER_TOKENS"],
        FRONT_END_ORIGINS=[FRONT_END],
        ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    ):
        yield readme_app


def _user(name, staff=False):
    import uuid

    return get_user_model().objects.create_user(f"{name}-{uuid.uuid4().hex[:8]}", password="pw", is_staff=staff)


def _login(client, user, **extra):
    return client.post(
        "/login", {"username": user.username, "password": "pw"}, content_type="application/json", **extra
    )


def _directives(response):
    return [d.split("=")[0].strip() for d in response.get("Cache-Control", "").split(",")]


def test_the_readme_app_end_to_end(app, clock):
    client = Client(enforce_csrf_checks=True)  # Django's CSRF checks are on
    user = _user("ada")

    page = client.get("/")
    assert page.status_code == 200 and b'src="/static/myapp/app.js"' in page.content

    wrong = client.post("/login", {"username": user.username, "password": "no"}, content_type="application/json")
    assert wrong.status_code == 400 and not wrong.cookies

    # Sign in (a POST that Django's CSRF middleware lets through: csrf_exempt).
    login = _login(client, user)
    assert login.status_code == 200, login.content
    assert login.json() == {"user_id": user.pk}
    assert set(support.cookies(login)) == {ACCESS, REFRESH, ID_REFRESH}
    for morsel in support.cookies(login).values():
        assert morsel["domain"] == "" and not morsel["secure"]  # COOKIE_DOMAIN None, COOKIE_SECURE False
    assert "no-store" in _directives(login)
    anti_csrf = login["anti-csrf"]

    # A protected GET; the user id keeps its type (int).
    profile = client.get("/profile")
    assert profile.status_code == 200
    assert profile.json() == {"user_id": user.pk, "payload": {"staff": False}}

    # A POST: the anti-csrf header is required.
    note = client.post("/notes", {"text": "hi"}, content_type="application/json", HTTP_ANTI_CSRF=anti_csrf)
    assert note.status_code == 200 and note.json() == {"saved": True}
    missing = client.post("/notes", {"text": "x"}, content_type="application/json")
    assert missing.status_code == 401 and missing.json() == {"message": "try refresh token"}

    # Expiry → 401 → refresh → retry, as the SDK does it.
    clock.advance(3601)
    expired = client.get("/profile")
    assert expired.status_code == 401 and expired.json() == {"message": "try refresh token"}
    refreshed = client.post("/refresh/")
    assert refreshed.status_code == 200
    assert set(support.cookies(refreshed)) == {ACCESS, REFRESH, ID_REFRESH}
    assert "no-store" in _directives(refreshed)
    anti_csrf = refreshed["anti-csrf"]
    retried = client.get("/profile")
    assert retried.status_code == 200 and retried.json()["user_id"] == user.pk

    # Staff views: refused to a non-staff session, by-user and by-handle for staff.
    assert client.get(f"/users/{user.pk}/sessions").status_code == 403
    staff = Client(enforce_csrf_checks=True)
    staff_login = _login(staff, _user("grace", staff=True))
    listed = staff.get(f"/users/{user.pk}/sessions").json()["sessions"]
    handles = [h for h, info in listed.items() if info == {"notes": ["hi"]}]
    assert len(handles) == 1, listed
    revoke = staff.post(f"/sessions/{handles[0]}/revoke", HTTP_ANTI_CSRF=staff_login["anti-csrf"])
    assert revoke.json() == {"revoked": True}
    assert handles[0] not in supertokens.get_all_session_handles_for_user(user.pk)
    # Without blacklisting, the revoked session's access token lives on until it expires.
    assert client.get("/profile").status_code == 200
    second = Client(enforce_csrf_checks=True)
    _login(second, user)
    revoke_all = staff.post(f"/users/{user.pk}/sessions/revoke", HTTP_ANTI_CSRF=staff_login["anti-csrf"])
    assert revoke_all.json() == {"revoked": True}
    assert supertokens.get_all_session_handles_for_user(user.pk) == []

    # Logout.
    third = Client(enforce_csrf_checks=True)
    third_login = _login(third, user)
    logout = third.post("/logout", HTTP_ANTI_CSRF=third_login["anti-csrf"])
    assert logout.status_code == 200 and logout.json() == {"signed_out": True}
    support.assert_cleared(logout, domain="")
    after = third.get("/profile")
    assert after.status_code == 401


def test_the_readme_views_answer_the_configured_status(app, clock):
    """One status throughout: the views that answer themselves read
    SESSION_EXPIRED_STATUS_CODE, like the middleware."""
    user = _user("status")
    development = settings_of("settings, development")["SUPER_TOKENS"]
    with override_settings(SUPER_TOKENS={**development, "SESSION_EXPIRED_STATUS_CODE": 440}):
        client = Client()
        _login(client, user)
        clock.advance(3601)
        assert client.get("/profile").status_code == 440  # the view's own answer
        assert client.post("/notes", {"text": "x"}, content_type="application/json").status_code == 440  # middleware
        client.cookies[REFRESH] = "garbage"
        assert client.post("/refresh/").status_code == 440


def test_a_cookieless_post_to_the_readme_views_clears_nothing(app):
    for path in ("/refresh/", "/notes", "/logout"):
        response = Client().post(path)
        assert response.status_code == 401, path
        assert not response.cookies, (path, response.cookies.output())


def test_the_readme_cors_recipe(app):
    client = Client()
    for path in ("/profile", "/notes", "/refresh/", "/login", "/logout"):
        preflight = client.options(
            path,
            HTTP_ORIGIN=FRONT_END,
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, anti-csrf",
        )
        assert preflight.status_code == 200, (path, preflight.status_code)
        assert preflight["Access-Control-Allow-Origin"] == FRONT_END
        assert preflight["Access-Control-Allow-Credentials"] == "true"
        allowed = {h.strip() for h in preflight["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "anti-csrf", "supertokens-sdk-name", "supertokens-sdk-version"} <= allowed
        assert "POST" in preflight["Access-Control-Allow-Methods"]
    login = _login(client, _user("cors"), HTTP_ORIGIN=FRONT_END)
    assert login["Access-Control-Allow-Origin"] == FRONT_END
    assert login["Access-Control-Allow-Credentials"] == "true"
    exposed = {h.strip() for h in login["Access-Control-Expose-Headers"].split(",")}
    assert {"anti-csrf", "id-refresh-token"} <= exposed
    assert "Origin" in login["Vary"]
    stranger = client.options("/profile", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert not stranger.has_header("Access-Control-Allow-Origin")


def test_theft_reaches_the_readme_logging_settings(app, caplog):
    logging_settings = settings_of("logging")["LOGGING"]
    logger = logging.getLogger("tessera.security")
    before = list(logger.handlers)
    logging.config.dictConfig(logging_settings)
    try:
        caplog.set_level(logging.WARNING, logger="tessera.security")
        client = Client()
        user = _user("theft")
        _login(client, user)
        stolen = client.cookies[REFRESH].value
        assert client.post("/refresh/").status_code == 200
        assert client.get("/profile").status_code == 200  # commits the new refresh token
        client.cookies[REFRESH] = stolen
        theft = client.post("/refresh/")
        assert theft.status_code == 401
        support.assert_cleared(theft, domain="")
        records = [r for r in caplog.records if r.name == "tessera.security"]
        assert len(records) == 1
        assert records[0].event == "token_theft" and records[0].user_id == str(user.pk)
        assert stolen not in records[0].getMessage()
        assert any(isinstance(h, logging.StreamHandler) for h in logger.handlers)
    finally:
        for handler in list(logger.handlers):
            if handler not in before:
                logger.removeHandler(handler)


def test_the_readme_https_settings(app):
    https = settings_of("settings, https")
    with override_settings(SUPER_TOKENS=https["SUPER_TOKENS"]):
        assert not [e for e in checks.run_checks() if e.id.startswith("tessera_django")]
        client = Client()
        login = _login(client, _user("https"), secure=True)
        assert login.status_code == 200
        jar = support.cookies(login)
        assert set(jar) == {"__Host-sAccessToken", "__Host-sIdRefreshToken", "__Secure-sRefreshToken"}
        assert all(m["secure"] and not m["domain"] for name, m in jar.items() if name.startswith("__Host-"))
        assert client.get("/profile", secure=True).status_code == 200


def test_the_readme_sdk_init_matches_the_settings(app):
    """The page's SDK options are the server's: the refresh path the README's
    URLconf routes, and the status the middleware answers with."""
    js = blocks()["sdk init"]
    url = re.search(r'refreshTokenUrl:\s*"([^"]+)"', js).group(1)
    status = int(re.search(r"sessionExpiredStatusCode:\s*(\d+)", js).group(1))
    assert status == _state.settings().session_expired_status == conf.DEFAULTS["SESSION_EXPIRED_STATUS_CODE"]
    assert url == "/" + conf.DEFAULTS["REFRESH_TOKEN_PATH"]
    ids = [e.id for e in checks.run_checks()]
    assert "tessera_django.W003" not in ids  # the README's URLconf answers at REFRESH_TOKEN_PATH
    assert "tessera_django.W004" not in ids  # COOKIE_DOMAIN None, even with 127.0.0.1 allowed
