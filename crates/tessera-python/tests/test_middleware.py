"""SuperTokensMiddleware: exceptions → responses."""

import json

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from tessera_django.exceptions import (
    SuperTokensGeneralException,
    SuperTokensTokenTheftException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)
from tessera_django.middleware import SuperTokensMiddleware

import support


def _run(exception, cookies=None):
    """``exception`` raised by a view, for a request that carries ``cookies``
    (by default a session's id-refresh cookie: cookies are cleared only for
    a request that carried one)."""

    def view(request):
        raise exception

    middleware = SuperTokensMiddleware(view)
    request = RequestFactory().get("/")
    request.COOKIES.update({support.ID_REFRESH: "x"} if cookies is None else cookies)
    try:
        return middleware(request)
    except Exception as e:  # what Django's handler would do: process_exception
        response = middleware.process_exception(request, e)
        if response is None:
            raise
        return response


def test_general_is_an_opaque_500():
    secret = "password authentication failed for user admin at db.internal:5432"
    response = _run(SuperTokensGeneralException(secret))
    assert response.status_code == 500
    assert response.content == b"Internal Server Error"
    assert not response.cookies


@pytest.mark.parametrize(
    "kind, status, body",
    [
        ("unavailable", 503, b"Service Unavailable"),
        ("timeout", 503, b"Service Unavailable"),
        ("invalid_argument", 400, b"Bad Request"),
        ("internal", 500, b"Internal Server Error"),
    ],
)
def test_general_answers_what_the_client_can_do(kind, status, body):
    secret = "db.internal:5432 said no"
    response = _run(SuperTokensGeneralException(secret, kind=kind))
    assert response.status_code == status
    assert response.content == body, "opaque: the kind only, never the cause"
    assert (response.get("Retry-After") == "1") == (status == 503)
    assert not response.cookies


@pytest.mark.parametrize("status", [401, 440])
def test_try_refresh_keeps_cookies(status):
    with override_settings(SUPER_TOKENS={"SESSION_EXPIRED_STATUS_CODE": status}):
        response = _run(SuperTokensTryRefreshTokenException("expired"))
    assert response.status_code == status
    assert json.loads(response.content) == {"message": "try refresh token"}
    support.assert_untouched(response)


@pytest.mark.parametrize("status", [401, 440])
def test_unauthorized_clears_cookies(status):
    with override_settings(SUPER_TOKENS={"SESSION_EXPIRED_STATUS_CODE": status}):
        response = _run(SuperTokensUnauthorizedException("gone"))
    assert response.status_code == status
    assert json.loads(response.content) == {"message": "unauthorised"}
    support.assert_cleared(response)


def test_theft_clears_cookies():
    response = _run(SuperTokensTokenTheftException("u", "h"))
    assert response.status_code == 401
    assert json.loads(response.content) == {"message": "token theft detected"}
    support.assert_cleared(response)


def test_cleared_cookies_follow_the_settings():
    settings = {"COOKIE_DOMAIN": "example.org", "REFRESH_TOKEN_PATH": "/auth/refresh"}
    with override_settings(SUPER_TOKENS=settings):
        response = _run(SuperTokensUnauthorizedException("gone"))
    jar = support.cookies(response)
    assert jar[support.REFRESH]["path"] == "/auth/refresh"
    assert {m["domain"] for m in jar.values()} == {"example.org"}


def test_other_exceptions_are_not_handled():
    with pytest.raises(ValueError):
        _run(ValueError("not ours"))


def test_passes_responses_through():
    response = SuperTokensMiddleware(lambda request: HttpResponse("fine"))(RequestFactory().get("/"))
    assert response.content == b"fine"


@pytest.mark.parametrize(
    "exception",
    [SuperTokensUnauthorizedException("gone"), SuperTokensTokenTheftException("u", "h")],
)
def test_a_request_without_session_cookies_gets_no_cookies_cleared(exception):
    """A cross-site form POST carries no SameSite=Lax cookies; clearing the
    cookies in its response would let any site log the user out."""
    response = _run(exception, cookies={"csrftoken": "x", "sessionid": "y"})
    assert response.status_code == 401
    support.assert_untouched(response)
    assert not response.has_header("Cache-Control")
    for name in (support.ACCESS, support.REFRESH):
        assert _run(exception, cookies={name: ""}).cookies  # any one of the three counts


def test_responses_of_pages_without_tessera_build_no_manager():
    """A page that sets its own cookies (csrftoken) does not make the
    middleware build a manager (which could wait on the database)."""
    from tessera_django import _state

    _state.reset()

    def view(request):
        response = HttpResponse()
        response.set_cookie("csrftoken", "x")
        return response

    response = SuperTokensMiddleware(view)(RequestFactory().get("/"))
    assert _state.peek() is None
    assert not response.has_header("Cache-Control")
