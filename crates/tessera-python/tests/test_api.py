"""Every function of the reference library's API reference, called as the reference library documents
it, with its return value and its cookie and header effects."""

import time
from email.utils import parsedate_to_datetime

import pytest
from django.http import HttpResponse
from django.test import override_settings
from rest_framework.response import Response

from tessera_django import supertokens
from tessera_django.exceptions import (
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)
from tessera_django.session import Session

import support
from conftest import Login
from support import ACCESS, ID_REFRESH, REFRESH


def _expires_ms(morsel):
    return int(parsedate_to_datetime(morsel["expires"]).timestamp() * 1000)


# -- create_new_session -------------------------------------------------------


def test_create_new_session_sets_three_cookies_and_headers(user_id, clock):
    response = HttpResponse()
    session = supertokens.create_new_session(response, user_id, {"role": "admin"}, {"cart": []})

    assert isinstance(session, Session)
    assert session.get_user_id() == user_id
    assert session.get_jwt_payload() == {"role": "admin"}
    assert len(session.get_handle()) >= 32

    jar = support.cookies(response)
    assert set(jar) == {ACCESS, REFRESH, ID_REFRESH}
    now = clock.now_ms
    access, refresh, id_refresh = jar[ACCESS], jar[REFRESH], jar[ID_REFRESH]
    # The reference library's defaults: Secure, Domain=localhost, access path "/",
    # refresh path "refresh/" served as "/refresh/"; SameSite=Lax (new).
    assert access["httponly"] and access["secure"]
    assert access["path"] == "/" and access["domain"] == "localhost"
    assert access["samesite"] == "Lax"
    assert refresh["httponly"] and refresh["secure"]
    assert refresh["path"] == "/refresh/" and refresh["domain"] == "localhost"
    # The id-refresh cookie is read by the front end: not HttpOnly, not Secure.
    assert not id_refresh["httponly"] and not id_refresh["secure"]
    assert id_refresh["path"] == "/"
    # Expiry = token expiry: one hour for the access token, 2400 h for the
    # refresh token. Expires only, never Max-Age.
    assert abs(_expires_ms(access) - (now + 3600 * 1000)) <= 1000
    assert abs(_expires_ms(refresh) - (now + 2400 * 3600 * 1000)) <= 1000
    assert _expires_ms(id_refresh) == _expires_ms(refresh)
    assert access["max-age"] == ""

    value, expiry = response["id-refresh-token"].split(";")
    assert value == id_refresh.value
    assert int(expiry) // 1000 == _expires_ms(refresh) // 1000
    assert len(response["anti-csrf"]) >= 32
    exposed = [h.strip() for h in response["Access-Control-Expose-Headers"].split(",")]
    assert sorted(exposed) == ["anti-csrf", "id-refresh-token"]


@pytest.mark.parametrize(
    "value",
    [
        {"a": {"b": [1, 2.5, None, True, "x"]}},
        [1, "two", {"three": 3}],
        42,
        -7.25,
        "text with ünïcödé and \"quotes\"",
        True,
        False,
        None,
        {},
    ],
    ids=["object", "array", "int", "float", "string", "true", "false", "none", "empty"],
)
def test_payload_and_info_round_trip_deeply_equal(value, user_id, login):
    s = login(payload=value, info=value)
    assert s.session.get_jwt_payload() == value
    assert supertokens.get_session_info(s.session.get_handle()) == value
    got = supertokens.get_session(s.request(), HttpResponse(), True)
    assert got.get_jwt_payload() == value
    assert type(got.get_jwt_payload()) is type(value)


def test_payload_and_info_default_to_none(user_id):
    response = HttpResponse()
    session = supertokens.create_new_session(response, user_id)
    assert session.get_jwt_payload() is None
    assert session.get_session_info() is None


def test_user_ids_keep_their_type():
    n = int(time.time() * 1000) % 10**12
    as_int = Login(n)
    as_str = Login(str(n))
    assert as_int.session.get_user_id() == n and isinstance(as_int.session.get_user_id(), int)
    assert as_str.session.get_user_id() == str(n)
    got = supertokens.get_session(as_int.request(), HttpResponse(), True)
    assert got.get_user_id() == n and isinstance(got.get_user_id(), int)
    # 7 and "7" are different users.
    assert supertokens.get_all_session_handles_for_user(n) == [as_int.session.get_handle()]
    assert supertokens.get_all_session_handles_for_user(str(n)) == [as_str.session.get_handle()]


@override_settings(SUPER_TOKENS={"ANTI_CSRF_ENABLE": False})
def test_no_anti_csrf_header_when_disabled(login):
    s = login()
    assert not s.response.has_header("anti-csrf")
    assert "anti-csrf" not in s.response["Access-Control-Expose-Headers"]
    # enable_csrf_protection=True is then ignored, as the reference library documents.
    supertokens.get_session(s.request(anti_csrf=None), HttpResponse(), True)


def test_create_new_session_works_with_drf_response(user_id):
    response = Response({"ok": True})
    supertokens.create_new_session(response, user_id, {"k": "v"})
    assert set(support.cookies(response)) == {ACCESS, REFRESH, ID_REFRESH}
    assert response.has_header("anti-csrf")


def test_expose_headers_appends_to_an_existing_value(user_id):
    response = HttpResponse()
    response["Access-Control-Expose-Headers"] = "x-request-id"
    supertokens.create_new_session(response, user_id)
    assert response["Access-Control-Expose-Headers"] == "x-request-id, id-refresh-token, anti-csrf"


# -- get_session --------------------------------------------------------------


def test_get_session_verifies_and_returns_the_session(login):
    s = login(payload={"p": 1})
    response = HttpResponse()
    session = supertokens.get_session(s.request(), response, True)
    assert session.get_handle() == s.session.get_handle()
    assert session.get_user_id() == s.session.get_user_id()
    assert session.get_jwt_payload() == {"p": 1}
    support.assert_untouched(response)


def test_get_session_reads_the_header_as_request_factory_sets_it(login):
    s = login()
    factory_request = support.request(s.jar, anti_csrf=None, HTTP_ANTI_CSRF=s.anti_csrf)
    assert factory_request.headers["anti-csrf"] == s.anti_csrf
    supertokens.get_session(factory_request, HttpResponse(), True)


def test_get_session_anti_csrf(login):
    s = login()
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(anti_csrf=None), HttpResponse(), True)
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(anti_csrf="wrong"), HttpResponse(), True)
    # Without CSRF protection (GET APIs) the header is not needed.
    supertokens.get_session(s.request(method="get", anti_csrf=None), HttpResponse(), False)


def test_get_session_without_id_refresh_cookie_is_unauthorized_and_clears(login):
    s = login()
    del s.jar[ID_REFRESH]
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session(s.request(), response, True)
    support.assert_cleared(response)


def test_get_session_without_access_cookie_is_try_refresh_and_keeps_cookies(login):
    s = login()
    del s.jar[ACCESS]
    response = HttpResponse()
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(), response, True)
    support.assert_untouched(response)


def test_get_session_after_expiry_is_try_refresh(login, clock):
    s = login()
    clock.advance(3599)
    supertokens.get_session(s.request(), HttpResponse(), True)
    clock.advance(2)
    response = HttpResponse()
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(), response, True)
    support.assert_untouched(response)


def test_revoked_session_keeps_working_until_expiry_without_blacklisting(login):
    s = login()
    assert supertokens.revoke_session(s.session.get_handle()) is True
    # The reference library's trade-off: the access token stays valid until it expires.
    supertokens.get_session(s.request(), HttpResponse(), True)


@override_settings(SUPER_TOKENS={"ACCESS_TOKEN_ENABLE_BLACKLISTING": True})
def test_blacklisting_makes_revocation_immediate(login):
    s = login()
    supertokens.get_session(s.request(), HttpResponse(), True)
    supertokens.revoke_session(s.session.get_handle())
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session(s.request(), response, True)
    support.assert_cleared(response)


# -- refresh_session ----------------------------------------------------------


def test_refresh_session_rotates_every_token(login, clock):
    s = login(payload={"p": 2})
    old = dict(s.jar)
    old_csrf = s.anti_csrf
    clock.advance(3601)
    session, response = s.refresh()

    assert session.get_handle() == s.session.get_handle()
    assert session.get_user_id() == s.session.get_user_id()
    assert session.get_jwt_payload() == {"p": 2}
    jar = support.cookies(response)
    assert set(jar) == {ACCESS, REFRESH, ID_REFRESH}
    for name in (ACCESS, REFRESH, ID_REFRESH):
        assert jar[name].value != old[name]
    assert response["anti-csrf"] != old_csrf
    assert response["id-refresh-token"].split(";")[0] == jar[ID_REFRESH].value
    assert jar[REFRESH]["path"] == "/refresh/"

    # The new access token works with the new anti-CSRF token only.
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(anti_csrf=old_csrf), HttpResponse(), True)
    first = HttpResponse()
    supertokens.get_session(s.request(), first, True)
    # First use of a refreshed access token promotes its refresh token and
    # issues a final access token (no parent) in a new cookie...
    assert set(support.cookies(first)) == {ACCESS}
    s.jar.update(support.values(first))
    # ...after which verification sets nothing.
    again = HttpResponse()
    supertokens.get_session(s.request(), again, True)
    support.assert_untouched(again)


def test_refresh_session_without_cookies_is_unauthorized_and_clears(login):
    s = login()
    for missing in (REFRESH, ID_REFRESH):
        jar = dict(s.jar)
        del jar[missing]
        response = HttpResponse()
        with pytest.raises(SuperTokensUnauthorizedException):
            supertokens.refresh_session(support.request(jar), response)
        support.assert_cleared(response)


def test_refresh_of_a_revoked_session_is_unauthorized(login):
    s = login()
    supertokens.revoke_session(s.session.get_handle())
    response = HttpResponse()
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.refresh_session(s.request(), response)
    support.assert_cleared(response)


def test_refresh_after_session_expiry_is_unauthorized(login, clock):
    s = login()
    clock.advance(2400 * 3600 + 1)
    with pytest.raises(SuperTokensUnauthorizedException):
        s.refresh()


def test_refresh_works_with_drf_response(login):
    s = login()
    response = Response()
    supertokens.refresh_session(s.request(), response)
    assert set(support.cookies(response)) == {ACCESS, REFRESH, ID_REFRESH}


# -- the Session object -------------------------------------------------------


def test_session_info_through_the_session_object(login):
    s = login(info={"cart": [1]})
    response = HttpResponse()
    session = supertokens.get_session(s.request(), response, True)
    assert session.get_session_info() == {"cart": [1]}
    assert session.update_session_info({"cart": [1, 2]}) is None
    assert session.get_session_info() == {"cart": [1, 2]}
    assert supertokens.get_session_info(session.get_handle()) == {"cart": [1, 2]}
    support.assert_untouched(response)


def test_session_revoke_session_deletes_the_row_and_clears_cookies(login):
    s = login()
    response = HttpResponse()
    session = supertokens.get_session(s.request(), response, True)
    assert session.revoke_session() is None
    support.assert_cleared(response)
    assert session.get_handle() not in supertokens.get_all_session_handles_for_user(
        session.get_user_id()
    )
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session_info(session.get_handle())


def test_session_info_of_a_revoked_session_is_unauthorized_and_clears(login):
    s = login()
    for call in (lambda x: x.get_session_info(), lambda x: x.update_session_info({"n": 1})):
        response = HttpResponse()
        session = supertokens.get_session(s.request(), response, True)
        supertokens.revoke_session(session.get_handle())
        with pytest.raises(SuperTokensUnauthorizedException):
            call(session)
        support.assert_cleared(response)


# -- by handle, by user -------------------------------------------------------


def test_get_and_update_session_info_by_handle(login):
    s = login(info={"v": 1})
    handle = s.session.get_handle()
    assert supertokens.get_session_info(handle) == {"v": 1}
    assert supertokens.update_session_info(handle, ["now", "a", "list"]) is None
    assert supertokens.get_session_info(handle) == ["now", "a", "list"]


def test_by_handle_on_a_missing_session_is_unauthorized():
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session_info("no-such-handle")
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.update_session_info("no-such-handle", {"x": 1})


def test_revoke_session_returns_whether_a_row_was_removed(login):
    s = login()
    handle = s.session.get_handle()
    assert supertokens.revoke_session(handle) is True
    assert supertokens.revoke_session(handle) is False
    assert supertokens.revoke_session("never-existed") is False


def test_sessions_by_user(login, user_id):
    handles = {login().session.get_handle() for _ in range(3)}
    other = login(uid=user_id + "-other").session.get_handle()
    assert set(supertokens.get_all_session_handles_for_user(user_id)) == handles
    assert supertokens.revoke_all_sessions_for_user(user_id) is None
    assert supertokens.get_all_session_handles_for_user(user_id) == []
    assert supertokens.get_all_session_handles_for_user(user_id + "-other") == [other]
    assert supertokens.get_all_session_handles_for_user("nobody-" + user_id) == []


# -- set_headers_for_options_api -------------------------------------------------


@pytest.mark.parametrize("response_class", [HttpResponse, Response])
def test_set_headers_for_options_api(response_class):
    response = response_class()
    response["Access-Control-Allow-Headers"] = "content-type"
    assert supertokens.set_headers_for_options_api(response) is None
    assert response["Access-Control-Allow-Headers"] == (
        "content-type, anti-csrf, supertokens-sdk-name, supertokens-sdk-version"
    )
    assert response["Access-Control-Allow-Credentials"] == "true"
    # Idempotent: listed values are not added twice.
    supertokens.set_headers_for_options_api(response)
    assert response["Access-Control-Allow-Headers"].count("anti-csrf") == 1
    fresh = response_class()
    supertokens.set_headers_for_options_api(fresh)
    assert fresh["Access-Control-Allow-Headers"] == (
        "anti-csrf, supertokens-sdk-name, supertokens-sdk-version"
    )


def test_by_handle_on_an_expired_session_is_unauthorized(login, clock):
    s = login(info={"v": 1})
    handle = s.session.get_handle()
    clock.advance(2400 * 3600 + 1)
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session_info(handle)
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.update_session_info(handle, {"v": 2})
