"""Django REST framework: Response objects, the authentication class."""

from django.test import override_settings
from rest_framework.test import APIClient, APIRequestFactory

from tessera_django.authentication import SessionExpired, SuperTokensAuthentication, SuperTokensUser
from tessera_django.exceptions import SuperTokensTryRefreshTokenException

import support
from support import ACCESS, ID_REFRESH, REFRESH


def _login(client, user_id, payload=None):
    response = client.post("/api/login", {"user_id": user_id, "payload": payload}, format="json")
    assert response.status_code == 200, response.content
    return response


def test_drf_story(user_id, clock):
    client = APIClient()
    login = _login(client, user_id, {"scope": "all"})
    assert set(support.cookies(login)) == {ACCESS, REFRESH, ID_REFRESH}
    anti_csrf = login["anti-csrf"]

    me = client.get("/api/me")
    assert me.status_code == 200
    assert me.json() == {"user_id": user_id, "payload": {"scope": "all"}, "info": None}

    # Unsafe methods need the anti-CSRF header.
    assert client.post("/api/me", {"a": 1}, format="json").status_code == 401
    updated = client.post("/api/me", {"a": 1}, format="json", HTTP_ANTI_CSRF=anti_csrf)
    assert updated.status_code == 200
    assert client.get("/api/me").json()["info"] == {"a": 1}

    clock.advance(3601)
    expired = client.get("/api/me")
    assert expired.status_code == 401
    assert expired.json() == {"detail": "Try refresh token."}
    assert not expired.cookies

    refreshed = client.post("/api/refresh")
    assert refreshed.status_code == 200
    assert refreshed.json() == {"user_id": user_id}

    # First use after the refresh: the authentication class verifies before
    # the view has a response; the middleware writes the new access token.
    first = client.get("/api/me")
    assert first.status_code == 200
    assert set(support.cookies(first)) == {ACCESS}
    second = client.get("/api/me")
    assert second.status_code == 200 and not second.cookies


def test_anonymous_requests(user_id):
    client = APIClient()
    # No cookies: not authenticated; IsAuthenticated answers 401.
    anonymous = client.get("/api/me")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == "SuperTokens"
    assert client.get("/api/public").json() == {"user": None}
    _login(client, user_id)
    assert client.get("/api/public").json() == {"user": user_id}


def test_revoked_session_clears_cookies_through_the_middleware(user_id):
    with override_settings(
        SUPER_TOKENS={"ACCESS_TOKEN_ENABLE_BLACKLISTING": True, "SESSION_EXPIRED_STATUS_CODE": 440}
    ):
        client = APIClient()
        handle = _login(client, user_id).json()["handle"]
        from tessera_django import supertokens

        supertokens.revoke_session(handle)
        response = client.get("/api/me")
    assert response.status_code == 440
    assert response.json() == {"detail": "Unauthorised."}
    support.assert_cleared(response)


def test_authentication_class_directly(login):
    s = login(payload={"x": 1})
    factory = APIRequestFactory()
    request = factory.get("/anything")
    request.COOKIES.update(s.jar)
    from rest_framework.request import Request

    user, session = SuperTokensAuthentication().authenticate(Request(request))
    assert isinstance(user, SuperTokensUser)
    assert user.id == s.session.get_user_id() and user.is_authenticated
    assert session.get_jwt_payload() == {"x": 1}

    post = factory.post("/anything")
    post.COOKIES.update(s.jar)
    try:
        SuperTokensAuthentication().authenticate(Request(post))
    except SessionExpired as e:
        assert e.status_code == 401
        assert isinstance(e.__cause__, SuperTokensTryRefreshTokenException)
    else:
        raise AssertionError("POST without anti-csrf header was accepted")

    empty = factory.get("/anything")
    assert SuperTokensAuthentication().authenticate(Request(empty)) is None


def test_authentication_class_with_a_cookie_name_prefix(user_id):
    # The class's "no session cookie: not attempted" shortcut must look for
    # the prefixed names, or every request would be anonymous.
    with override_settings(SUPER_TOKENS={"COOKIE_NAME_PREFIX": "__Host-", "COOKIE_DOMAIN": None}):
        client = APIClient()
        login = _login(client, user_id)
        assert set(support.cookies(login)) == {
            "__Host-sAccessToken",
            "__Secure-sRefreshToken",
            "__Host-sIdRefreshToken",
        }
        me = client.get("/api/me")
        assert me.status_code == 200
        assert me.json()["user_id"] == user_id
