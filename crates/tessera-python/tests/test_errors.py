"""Errors cross the boundary as the reference library's exception classes: bad cookies and
headers give Unauthorized or TryRefreshToken (never General, never a panic),
misuse and database failures give General."""

import base64
import json
import pickle

import pytest
from django.http import HttpResponse
from django.test import override_settings

from tessera_django import supertokens
from tessera_django.exceptions import (
    SuperTokensException,
    SuperTokensGeneralException,
    SuperTokensTokenTheftException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)

import support
from support import ACCESS, ID_REFRESH, REFRESH


def test_exception_hierarchy():
    for cls in (
        SuperTokensGeneralException,
        SuperTokensUnauthorizedException,
        SuperTokensTryRefreshTokenException,
        SuperTokensTokenTheftException,
    ):
        assert issubclass(cls, SuperTokensException)
        assert issubclass(cls, Exception)
    assert not issubclass(SuperTokensTryRefreshTokenException, SuperTokensUnauthorizedException)
    assert not issubclass(SuperTokensUnauthorizedException, SuperTokensTryRefreshTokenException)
    assert not issubclass(SuperTokensTokenTheftException, SuperTokensUnauthorizedException)


def test_theft_exception_carries_user_and_handle():
    e = SuperTokensTokenTheftException(7, "handle-1")
    assert e.get_user_id() == 7 and e.get_session_handle() == "handle-1"
    copy = pickle.loads(pickle.dumps(e))
    assert (copy.get_user_id(), copy.get_session_handle()) == (7, "handle-1")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_access_tokens(real: str):
    header, claims, signature = real.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    forged = dict(decoded, uid="someone-else")
    none_header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    hs512_header = _b64(json.dumps({"alg": "HS512", "typ": "JWT"}).encode())
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return {
        "garbage": "garbage",
        "dots": "..",
        "two-parts": f"{header}.{claims}",
        "four-parts": f"{real}.x",
        "truncated": real[:-10],
        "bad-signature": f"{header}.{claims}.{flipped}",
        "forged-claims": f"{header}.{_b64(json.dumps(forged).encode())}.{signature}",
        "alg-none": f"{none_header}.{claims}.",
        "alg-hs512": f"{hs512_header}.{claims}.{signature}",
        "not-base64": "%%%.$$$.&&&",
        "unicode": "ünïcødé.токен.签名",
        "nul": "a\x00b.c.d",
        "huge": "A" * 100_000 + "." + "B" * 100 + ".C",
        "claims-not-json": f"{header}.{_b64(b'not json')}.{signature}",
    }


def test_bad_access_tokens_are_try_refresh(login):
    s = login()
    for name, token in _bad_access_tokens(s.jar[ACCESS]).items():
        jar = dict(s.jar, **{ACCESS: token})
        response = HttpResponse()
        with pytest.raises(SuperTokensTryRefreshTokenException):
            supertokens.get_session(support.request(jar, anti_csrf=s.anti_csrf), response, True)
        support.assert_untouched(response)
    # The real token still works.
    supertokens.get_session(s.request(), HttpResponse(), True)


@pytest.mark.parametrize(
    "header",
    ["", "wrong", "ünïcødé", "x" * 10_000, " ", "\t"],
    ids=["empty", "wrong", "unicode", "long", "space", "tab"],
)
def test_bad_anti_csrf_headers_are_try_refresh(header, login):
    s = login()
    response = HttpResponse()
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(anti_csrf=None, HTTP_ANTI_CSRF=header), response, True)
    support.assert_untouched(response)


@pytest.mark.parametrize(
    "token",
    ["garbage", "", "A" * 100_000, "ünïcødé", "a.b.c", "%00"],
    ids=["garbage", "empty", "huge", "unicode", "jwt-like", "percent"],
)
def test_bad_refresh_tokens_are_unauthorized_and_clear(token, login):
    s = login()
    jar = dict(s.jar, **{REFRESH: token})
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.refresh_session(support.request(jar), response)
    support.assert_cleared(response)


def test_tampered_refresh_token_is_unauthorized(login):
    s = login()
    real = s.jar[REFRESH]
    for tampered in (real[:-1] + ("A" if real[-1] != "A" else "B"), real[:40], real + "AAAA"):
        response = HttpResponse()
        with pytest.raises(SuperTokensUnauthorizedException):
            supertokens.refresh_session(support.request(dict(s.jar, **{REFRESH: tampered})), response)
        support.assert_cleared(response)


def test_refresh_token_of_another_session_does_not_mix_sessions(login):
    a, b = login(), login()
    jar = dict(a.jar, **{REFRESH: b.jar[REFRESH]})
    session = supertokens.refresh_session(support.request(jar), HttpResponse())
    # The refresh token decides whose session is refreshed.
    assert session.get_handle() == b.session.get_handle()


def test_empty_cookies_count_as_absent(login):
    """A cleared cookie that a client sends back empty means no session."""
    s = login()
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session(support.request(dict(s.jar, **{ID_REFRESH: ""})), response, True)
    support.assert_cleared(response)


def test_no_cookies_at_all(rf):
    """Unauthorized, and nothing cleared: the request carried no session
    cookie, so there is nothing to clear, and clearing would let any site
    log its visitors out with a cross-site form POST (which carries no
    SameSite=Lax cookies)."""
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session(rf.get("/"), response, False)
    support.assert_untouched(response)
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.refresh_session(rf.post("/"), response)
    support.assert_untouched(response)


def test_cookie_header_parsed_by_django(client, login):
    """Cookies arrive through Django's own Cookie-header parsing."""
    s = login()
    header = "; ".join(f"{k}={v}" for k, v in s.jar.items())
    response = client.get("/protected", HTTP_COOKIE=header)
    assert response.status_code == 200
    assert response.json()["user_id"] == s.session.get_user_id()
    garbage = client.get("/protected", HTTP_COOKIE="sIdRefreshToken=x; sAccessToken=\"quoted;garbage\"")
    assert garbage.status_code == 401


# -- misuse: General ------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_user_id",
    [True, 1.5, 7.0, None, ["list"], {"d": 1}, 2**63, -(2**63) - 1, b"bytes"],
    ids=["bool", "float", "integral-float", "none", "list", "dict", "too-big", "too-small", "bytes"],
)
def test_user_id_must_be_str_or_int(bad_user_id):
    with pytest.raises(SuperTokensGeneralException, match="user"):
        supertokens.create_new_session(HttpResponse(), bad_user_id)
    with pytest.raises(SuperTokensGeneralException):
        supertokens.get_all_session_handles_for_user(bad_user_id)
    with pytest.raises(SuperTokensGeneralException):
        supertokens.revoke_all_sessions_for_user(bad_user_id)


def test_largest_integer_user_ids_work():
    for uid in (2**63 - 1, -(2**63)):
        s = supertokens.create_new_session(HttpResponse(), uid)
        assert s.get_user_id() == uid
        supertokens.revoke_session(s.get_handle())


def test_too_long_user_id_is_general():
    with pytest.raises(SuperTokensGeneralException, match="too long"):
        supertokens.create_new_session(HttpResponse(), "x" * 300)


@pytest.mark.parametrize(
    "payload",
    [{1, 2}, float("nan"), float("inf"), object(), {"k": b"bytes"}],
    ids=["set", "nan", "inf", "object", "bytes"],
)
def test_payload_and_info_must_be_json(payload, user_id):
    with pytest.raises(SuperTokensGeneralException, match="jwt_payload must be JSON"):
        supertokens.create_new_session(HttpResponse(), user_id, payload)
    with pytest.raises(SuperTokensGeneralException, match="session_info must be JSON"):
        supertokens.create_new_session(HttpResponse(), user_id, None, payload)
    with pytest.raises(SuperTokensGeneralException, match="session_info must be JSON"):
        supertokens.update_session_info("some-handle", payload)


def test_deeply_nested_payload_is_general(user_id):
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(SuperTokensGeneralException):
        supertokens.create_new_session(HttpResponse(), user_id, deep)


def test_response_and_request_must_be_django_objects(login, rf):
    s = login()
    for bad in (None, "response", object()):
        with pytest.raises(SuperTokensGeneralException, match="response must be"):
            supertokens.create_new_session(bad, "u")
        with pytest.raises(SuperTokensGeneralException, match="response must be"):
            supertokens.get_session(s.request(), bad, True)
        with pytest.raises(SuperTokensGeneralException, match="response must be"):
            supertokens.set_headers_for_options_api(bad)
    with pytest.raises(SuperTokensGeneralException, match="request must be"):
        supertokens.get_session(None, HttpResponse(), True)
    with pytest.raises(SuperTokensGeneralException, match="request must be"):
        supertokens.refresh_session("request", HttpResponse())


def test_a_response_that_fails_to_take_cookies_is_general(user_id):
    class Broken(HttpResponse):
        def set_cookie(self, *args, **kwargs):
            raise RuntimeError("cannot")

    with pytest.raises(SuperTokensGeneralException, match="could not write to the response") as e:
        supertokens.create_new_session(Broken(), user_id)
    assert isinstance(e.value.__cause__, RuntimeError)


@pytest.mark.parametrize("handle", [None, 42, b"bytes"])
def test_session_handle_must_be_a_string(handle):
    for call in (
        supertokens.get_session_info,
        supertokens.revoke_session,
        lambda h: supertokens.update_session_info(h, {}),
    ):
        with pytest.raises(SuperTokensGeneralException, match="session_handle must be a str"):
            call(handle)


# -- database failures: General -------------------------------------------------


def test_unreachable_database_is_general():
    url = "postgres://postgres@127.0.0.1:1/nothing-listens-here"
    with override_settings(SUPER_TOKENS={"DATABASE_URL": url, "DATABASE_ACQUIRE_TIMEOUT": 0.5}):
        for call in (
            lambda: supertokens.create_new_session(HttpResponse(), "u"),
            lambda: supertokens.get_session_info("h"),
            lambda: supertokens.revoke_session("h"),
            lambda: supertokens.get_all_session_handles_for_user("u"),
        ):
            with pytest.raises(SuperTokensGeneralException) as e:
                call()
            assert "127.0.0.1:1" in str(e.value)
            assert "postgres@" in str(e.value)
            # An outage (refused connections until the acquire timeout): the
            # caller may retry.
            assert e.value.kind in ("unavailable", "timeout"), e.value
            assert e.value.is_retryable()


def test_misuse_is_an_invalid_argument_not_an_outage():
    with pytest.raises(SuperTokensGeneralException, match="too long") as e:
        supertokens.create_new_session(HttpResponse(), "u" * 300)
    assert e.value.kind == "invalid_argument"
    assert not e.value.is_retryable()


def test_password_is_not_in_error_messages():
    url = "postgres://postgres:s3cret-pw@127.0.0.1:1/x"
    with override_settings(SUPER_TOKENS={"DATABASE_URL": url, "DATABASE_ACQUIRE_TIMEOUT": 0.5}):
        with pytest.raises(SuperTokensGeneralException) as e:
            supertokens.get_session_info("h")
    text = str(e.value) + repr(e.value) + str(e.value.__cause__)
    assert "s3cret-pw" not in text


def test_missing_tables_is_general_with_a_hint(tmp_path):
    url = "sqlite://" + str(tmp_path / "empty.sqlite3")
    with override_settings(SUPER_TOKENS={"DATABASE_URL": url}):
        with pytest.raises(SuperTokensGeneralException, match="manage.py migrate"):
            supertokens.create_new_session(HttpResponse(), "u")


def test_a_panic_in_rust_is_a_general_exception():
    from tessera_django import _native

    with pytest.raises(SuperTokensGeneralException, match="internal error"):
        _native._panic_for_tests()
    # The runtime survives it.
    assert supertokens.get_all_session_handles_for_user("nobody-after-panic") == []
