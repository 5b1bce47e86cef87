"""settings.SUPER_TOKENS: the reference library's keys, units and defaults, the new keys,
validation, and changes through Django's setting_changed signal."""

import datetime
import re

import pytest
from django.core import checks
from django.http import HttpResponse
from django.test import override_settings

from tessera_django import _state, conf, supertokens
from tessera_django.exceptions import (
    SuperTokensGeneralException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)

import support
from support import ACCESS, ID_REFRESH, REFRESH


def test_defaults_are_the_reference_librarys():
    assert conf.REFERENCE_DEFAULTS == {
        "ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC": True,
        "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 24,
        "ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": None,
        "ACCESS_TOKEN_VALIDITY": 3600,
        "ACCESS_TOKEN_ENABLE_BLACKLISTING": False,
        "ACCESS_TOKEN_PATH": "/",
        "ANTI_CSRF_ENABLE": True,
        "REFRESH_TOKEN_VALIDITY": 2400,
        "REFRESH_TOKEN_PATH": "refresh/",
        "COOKIE_DOMAIN": "localhost",
        "COOKIE_SECURE": True,
    }
    assert conf.EXTRA_DEFAULTS == {
        "COOKIE_SAME_SITE": "Lax",
        "COOKIE_NAME_PREFIX": None,
        "SESSION_EXPIRED_STATUS_CODE": 401,
        "REVOKE_SESSION_ON_TOKEN_THEFT": True,
        "ACCEPT_PREVIOUS_SIGNING_KEY": False,
        "DATABASE_ALIAS": "default",
        "DATABASE_URL": None,
        "DATABASE_POOL_SIZE": 10,
        "DATABASE_ACQUIRE_TIMEOUT": 5,
        "REFERENCE_PROFILE": True,
        "CURRENT_SDK": None,
        "ACCESS_TOKEN_ALGORITHM": "HS256",
        "ACCESS_TOKEN_ISSUER": "tessera",
        "ACCESS_TOKEN_AUDIENCE": None,
        "REFRESH_TOKEN_GRACE_PERIOD": 0,
        "IDLE_TIMEOUT": None,
        "ABSOLUTE_LIFETIME": None,
        "RECORD_CLIENT_ADDRESS": False,
    }


def test_cookie_settings_take_effect_through_override_settings(login, clock):
    custom = {
        "ACCESS_TOKEN_PATH": "/api/",
        "REFRESH_TOKEN_PATH": "/api/session/refresh",
        "COOKIE_DOMAIN": "example.com",
        "COOKIE_SECURE": False,
        "COOKIE_SAME_SITE": "Strict",
        "ACCESS_TOKEN_VALIDITY": 60,
        "REFRESH_TOKEN_VALIDITY": 2,
    }
    with override_settings(SUPER_TOKENS=custom):
        s = login()
        jar = support.cookies(s.response)
        for name in (ACCESS, ID_REFRESH):
            assert jar[name]["path"] == "/api/"
        assert jar[REFRESH]["path"] == "/api/session/refresh"
        for morsel in jar.values():
            assert morsel["domain"] == "example.com"
            assert not morsel["secure"]
            assert morsel["samesite"] == "Strict"
        expires = datetime.datetime.strptime(jar[ACCESS]["expires"], "%a, %d %b %Y %H:%M:%S GMT")
        expires = expires.replace(tzinfo=datetime.timezone.utc)
        assert abs((expires - clock.now()).total_seconds() - 60) <= 1
        refresh_expires = datetime.datetime.strptime(
            jar[REFRESH]["expires"], "%a, %d %b %Y %H:%M:%S GMT"
        ).replace(tzinfo=datetime.timezone.utc)
        assert abs((refresh_expires - clock.now()).total_seconds() - 2 * 3600) <= 1
        clock.advance(61)
        with pytest.raises(SuperTokensTryRefreshTokenException):
            supertokens.get_session(s.request(), HttpResponse(), True)
    # Back to the defaults once the override ends.
    s = login()
    assert support.cookies(s.response)[ACCESS]["domain"] == "localhost"


def test_host_only_cookies_with_cookie_domain_none(login):
    with override_settings(SUPER_TOKENS={"COOKIE_DOMAIN": None}):
        s = login()
    assert all(m["domain"] == "" for m in support.cookies(s.response).values())


@pytest.mark.parametrize(
    "prefix, names",
    [
        ("__Host-", ("__Host-sAccessToken", "__Secure-sRefreshToken", "__Host-sIdRefreshToken")),
        ("__Secure-", ("__Secure-sAccessToken", "__Secure-sRefreshToken", "__Secure-sIdRefreshToken")),
    ],
)
def test_cookie_name_prefix(prefix, names, login, clock):
    access, refresh, id_refresh = names
    with override_settings(SUPER_TOKENS={"COOKIE_NAME_PREFIX": prefix, "COOKIE_DOMAIN": None}):
        s = login()
        jar = support.cookies(s.response)
        assert set(jar) == set(names)
        for morsel in jar.values():
            # Secure (the id-refresh cookie too) and host-only, as browsers
            # require for these names.
            assert morsel["secure"] and morsel["domain"] == ""
        assert jar[access]["path"] == "/" and jar[id_refresh]["path"] == "/"
        assert jar[refresh]["path"] == "/refresh/"
        assert s.response["id-refresh-token"].split(";")[0] == s.jar[id_refresh]

        # Read under the prefixed names, and only under them.
        supertokens.get_session(s.request(), HttpResponse(), True)
        plain = {ACCESS: s.jar[access], REFRESH: s.jar[refresh], ID_REFRESH: s.jar[id_refresh]}
        with pytest.raises(SuperTokensUnauthorizedException):
            supertokens.get_session(
                support.request(plain, anti_csrf=s.anti_csrf), HttpResponse(), True
            )
        with pytest.raises(SuperTokensUnauthorizedException):
            supertokens.refresh_session(support.request(plain), HttpResponse())

        # Refresh reads the prefixed refresh cookie and sets prefixed cookies.
        clock.advance(3601)
        with pytest.raises(SuperTokensTryRefreshTokenException):
            supertokens.get_session(s.request(), HttpResponse(), True)
        _, response = s.refresh()
        assert set(support.cookies(response)) == set(names)
        supertokens.get_session(s.request(), HttpResponse(), True)

        # A revoked session's cookies are cleared under the same names.
        supertokens.revoke_session(s.session.get_handle())
        response = HttpResponse()
        with pytest.raises(SuperTokensUnauthorizedException):
            supertokens.refresh_session(s.request(), response)
        cleared = support.cookies(response)
        assert set(cleared) == set(names)
        assert all(m.value == "" and m["expires"] == support.EPOCH for m in cleared.values())


def test_samesite_none_requires_secure():
    with override_settings(SUPER_TOKENS={"COOKIE_SAME_SITE": "None", "COOKIE_SECURE": False}):
        with pytest.raises(SuperTokensGeneralException, match="SameSite=None requires Secure"):
            supertokens.create_new_session(HttpResponse(), "u")
    with override_settings(SUPER_TOKENS={"COOKIE_SAME_SITE": "None"}):
        s = supertokens.create_new_session(response := HttpResponse(), "u")
        jar = support.cookies(response)
        assert jar[ACCESS]["samesite"] == "None"
        # The id-refresh cookie is never Secure, so it falls back to Lax.
        assert jar[ID_REFRESH]["samesite"] == "Lax"
        supertokens.revoke_session(s.get_handle())


@pytest.mark.parametrize(
    "override, message",
    [
        ({"REFRESH_TOKEN_VALIDITY": 0}, "REFRESH_TOKEN_VALIDITY must be a positive number"),
        ({"ACCESS_TOKEN_VALIDITY": -1}, "ACCESS_TOKEN_VALIDITY must be a positive number"),
        ({"ACCESS_TOKEN_VALIDITY": 0.0}, "ACCESS_TOKEN_VALIDITY must be a positive number"),
        (
            {"ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 0},
            "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL must be a positive number",
        ),
        ({"REFRESH_TOKEN_VALIDITY": False}, "REFRESH_TOKEN_VALIDITY must be a number"),
        ({"ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": True}, "must be a number, not bool"),
        ({"ANTI_CSRF_ENABLE": "False"}, "ANTI_CSRF_ENABLE must be True or False"),
        ({"COOKIE_SECURE": 1}, "COOKIE_SECURE must be True or False"),
        ({"ACCESS_TOKEN_VALIDITY": "3600"}, "ACCESS_TOKEN_VALIDITY must be a number"),
        ({"ACCESS_TOKEN_VALIDITY": True}, "ACCESS_TOKEN_VALIDITY must be a number"),
        ({"COOKIE_DOMAIN": "https://example.com"}, "bare domain"),
        ({"COOKIE_SAME_SITE": "sometimes"}, "COOKIE_SAME_SITE must be"),
        ({"COOKIE_NAME_PREFIX": "__Foo-"}, 'COOKIE_NAME_PREFIX must be None, "__Secure-" or "__Host-"'),
        ({"COOKIE_NAME_PREFIX": "__Host-"}, "__Host- cookies cannot carry a Domain"),
        ({"COOKIE_NAME_PREFIX": "__Secure-", "COOKIE_SECURE": False}, "require Secure cookies"),
        ({"SESSION_EXPIRED_STATUS_CODE": 200}, "4xx"),
        ({"SESSION_EXPIRED_STATUS_CODE": "440"}, "SESSION_EXPIRED_STATUS_CODE must be"),
        ({"ACCESS_TOKEN_PATH": "/a b"}, "not allowed in a cookie path"),
        ({"ACCES_TOKEN_VALIDITY": 60}, "unknown key 'ACCES_TOKEN_VALIDITY'; did you mean 'ACCESS_TOKEN_VALIDITY'"),
        ({"DATABASE_POOL_SIZE": 0}, "DATABASE_POOL_SIZE"),
        ({"DATABASE_ALIAS": "nope"}, "DATABASE_ALIAS 'nope' is not in DATABASES"),
        ({"ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": 42}, "must be a callable"),
        ({"ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": "no.such.module.key"}, "cannot import"),
    ],
)
def test_invalid_settings_raise_general_and_fail_the_system_check(override, message):
    pattern = re.escape(message)
    with override_settings(SUPER_TOKENS=override):
        with pytest.raises(SuperTokensGeneralException, match=pattern):
            supertokens.create_new_session(HttpResponse(), "u")
        errors = [e for e in checks.run_checks() if e.id.startswith("tessera_django.E")]
        assert len(errors) == 1, "the system check did not report it"
        assert re.search(pattern, errors[0].msg), errors[0].msg


def test_valid_settings_pass_the_system_check():
    assert [e for e in checks.run_checks() if e.id.startswith("tessera_django")] == []


def _range_warnings():
    return [e for e in checks.run_checks() if e.id == "tessera_django.W002"]


@pytest.mark.parametrize(
    "override, key",
    [
        # The reference library's own tests use 0.0005 h (1.8 s).
        ({"ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 0.0005}, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL"),
        ({"ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 0.5}, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL"),
        ({"ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 721}, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL"),
        ({"ACCESS_TOKEN_VALIDITY": 5}, "ACCESS_TOKEN_VALIDITY"),
        # JWT expiry is in whole seconds (rounded down): keep it above 1 s here.
        ({"ACCESS_TOKEN_VALIDITY": 1.5}, "ACCESS_TOKEN_VALIDITY"),
        ({"ACCESS_TOKEN_VALIDITY": 86_400_001}, "ACCESS_TOKEN_VALIDITY"),
        ({"REFRESH_TOKEN_VALIDITY": 8761}, "REFRESH_TOKEN_VALIDITY"),
        ({"REFRESH_TOKEN_VALIDITY": 0.01}, "REFRESH_TOKEN_VALIDITY"),
        # Both in range, but sessions end before their access tokens.
        ({"ACCESS_TOKEN_VALIDITY": 7200, "REFRESH_TOKEN_VALIDITY": 1}, "is shorter than"),
    ],
)
def test_values_the_reference_accepts_work_and_warn_outside_the_recommended_range(override, key, user_id, clock):
    with override_settings(SUPER_TOKENS=override):
        conf.load()  # no exception
        response = HttpResponse()
        session = supertokens.create_new_session(response, user_id)
        request = support.request(support.values(response), anti_csrf=response["anti-csrf"])
        assert supertokens.get_session(request, HttpResponse(), True).get_handle() == session.get_handle()
        all_checks = checks.run_checks()
        assert not [e for e in all_checks if e.id.startswith("tessera_django.E")]
        warnings = _range_warnings()
        assert any(key in w.msg for w in warnings), [w.msg for w in warnings]
        assert all(isinstance(w, checks.Warning) and not w.is_serious() for w in warnings)
        supertokens.revoke_session(session.get_handle())


@pytest.mark.parametrize(
    "override",
    [
        {},
        {"ACCESS_TOKEN_VALIDITY": 10, "REFRESH_TOKEN_VALIDITY": 1, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 1},
        {"ACCESS_TOKEN_VALIDITY": 31_536_000, "REFRESH_TOKEN_VALIDITY": 8760, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 720},
        # The key interval does not matter with a static key.
        {"ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC": False, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 0.0005},
    ],
)
def test_recommended_values_have_no_range_warning(override):
    with override_settings(SUPER_TOKENS=override):
        assert [w.msg for w in _range_warnings()] == []


def test_a_sub_second_access_validity_warns_about_whole_seconds():
    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_VALIDITY": 0.5}):
        warnings = [w.msg for w in _range_warnings()]
    assert len(warnings) == 1 and "whole seconds" in warnings[0], warnings
    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_VALIDITY": 2}):
        assert not any("whole seconds" in w.msg for w in _range_warnings())


def test_huge_validities_are_cut_to_1000_years_without_overflow(user_id):
    huge = {
        "ACCESS_TOKEN_VALIDITY": 1e300,
        "REFRESH_TOKEN_VALIDITY": 10**30,
        "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 1e18,
    }
    with override_settings(SUPER_TOKENS=huge):
        response = HttpResponse()
        session = supertokens.create_new_session(response, user_id)
        jar = support.cookies(response)
        for name in (ACCESS, REFRESH):
            year = int(jar[name]["expires"].split()[3])
            assert datetime.date.today().year + 990 < year < 9999, jar[name]["expires"]
        request = support.request(support.values(response), anti_csrf=response["anti-csrf"])
        supertokens.get_session(request, HttpResponse(), True)
        refreshed = HttpResponse()
        supertokens.refresh_session(support.request(support.values(response)), refreshed)
        warnings = [w.msg for w in _range_warnings()]
        assert len(warnings) == 3 and all("1000 years" in w for w in warnings), warnings
        supertokens.revoke_session(session.get_handle())


def test_key_interval_of_the_reference_tests_rotates_in_real_time(user_id):
    """REAL time, no frozen clock: with the interval the reference library's
    own tests use (0.0005 h = 1.8 s), a token issued before a 2 s sleep needs
    a refresh after it; the refresh succeeds and its token verifies."""
    import time

    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 0.0005}):
        _state.get().rotate_signing_key()  # a key made now, not one left by another test
        response = HttpResponse()
        supertokens.create_new_session(response, user_id)
        jar = support.values(response)
        anti_csrf = response["anti-csrf"]
        supertokens.get_session(support.request(jar, anti_csrf=anti_csrf), HttpResponse(), True)
        time.sleep(2)
        # The first verification after the interval may still use the cached
        # key while the rotation is read in the background (get_session never
        # waits on the database); within moments the new key is in use.
        deadline = time.monotonic() + 3
        with pytest.raises(SuperTokensTryRefreshTokenException):
            while time.monotonic() < deadline:
                supertokens.get_session(support.request(jar, anti_csrf=anti_csrf), HttpResponse(), True)
                time.sleep(0.05)
        refreshed = HttpResponse()
        supertokens.refresh_session(support.request(jar), refreshed)
        jar.update(support.values(refreshed))
        session = supertokens.get_session(
            support.request(jar, anti_csrf=refreshed["anti-csrf"]), HttpResponse(), True
        )
        assert session.get_user_id() == user_id
        supertokens.revoke_session(session.get_handle())


def _ids():
    return [e.id for e in checks.run_checks()]


def test_refresh_path_without_a_view_is_a_warning():
    # The test project routes its refresh view at "refresh/" and "api/refresh".
    with override_settings(SUPER_TOKENS={"REFRESH_TOKEN_PATH": "api/refresh/"}):
        found = [e for e in checks.run_checks() if e.id == "tessera_django.W003"]
        assert len(found) == 1 and "'/api/refresh/'" in found[0].msg, [e.msg for e in found]
        assert isinstance(found[0], checks.Warning) and not found[0].is_serious()
    with override_settings(SUPER_TOKENS={"REFRESH_TOKEN_PATH": "/nowhere"}):
        assert "tessera_django.W003" in _ids()


@pytest.mark.parametrize("path", ["refresh/", "/refresh/", "api/refresh", "/api/refresh"])
def test_refresh_path_with_a_view_has_no_warning(path):
    with override_settings(SUPER_TOKENS={"REFRESH_TOKEN_PATH": path}):
        assert "tessera_django.W003" not in _ids()


def test_localhost_cookie_domain_with_another_allowed_host_is_a_warning():
    with override_settings(ALLOWED_HOSTS=["127.0.0.1", "localhost"]):
        found = [e for e in checks.run_checks() if e.id == "tessera_django.W004"]
        assert len(found) == 1 and "127.0.0.1" in found[0].msg
    with override_settings(ALLOWED_HOSTS=[], DEBUG=True):
        assert "tessera_django.W004" in _ids()
    with override_settings(ALLOWED_HOSTS=["127.0.0.1"], SUPER_TOKENS={"COOKIE_DOMAIN": None}):
        assert "tessera_django.W004" not in _ids()
    with override_settings(ALLOWED_HOSTS=["localhost", "app.localhost"]):
        assert "tessera_django.W004" not in _ids()


def test_settings_must_be_a_dict():
    with override_settings(SUPER_TOKENS=["ACCESS_TOKEN_VALIDITY"]):
        with pytest.raises(SuperTokensGeneralException, match="must be a dict"):
            supertokens.get_all_session_handles_for_user("u")


def test_drf_without_the_middleware_is_a_warning():
    with override_settings(MIDDLEWARE=[]):
        ids = [e.id for e in checks.run_checks()]
    assert "tessera_django.W001" in ids


def test_manager_is_rebuilt_only_when_settings_change():
    first = _state.get()
    assert _state.get() is first
    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_VALIDITY": 120}):
        second = _state.get()
        assert second is not first
    assert _state.get() is not second


# -- signing keys ---------------------------------------------------------------


def test_signing_key_rotation_causes_try_refresh(login, clock):
    """The reference library: a signing-key change causes TryRefreshToken. With a 1 h
    interval and long-lived access tokens, the key changes under a valid token."""
    long_tokens = {"ACCESS_TOKEN_VALIDITY": 86400, "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 1}
    with override_settings(SUPER_TOKENS=long_tokens):
        # Other tests move the clock far ahead and may leave a key "from the
        # future" in the shared test database: start from a key made now.
        _state.get().rotate_signing_key()
        s = login()
        clock.advance(1800)
        supertokens.get_session(s.request(), HttpResponse(), True)
        clock.advance(1900)  # past the interval: the next call rotates
        fresh = login()
        with pytest.raises(SuperTokensTryRefreshTokenException):
            supertokens.get_session(s.request(), HttpResponse(), True)
        supertokens.get_session(fresh.request(), HttpResponse(), True)
        # Refreshing gives a token signed with the new key.
        s.refresh()
        supertokens.get_session(s.request(), HttpResponse(), True)


def test_accept_previous_signing_key(login, clock):
    settings = {
        "ACCESS_TOKEN_VALIDITY": 86400,
        "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 1,
        "ACCEPT_PREVIOUS_SIGNING_KEY": True,
    }
    with override_settings(SUPER_TOKENS=settings):
        _state.get().rotate_signing_key()
        s = login()
        clock.advance(3700)
        login()  # rotates
        supertokens.get_session(s.request(), HttpResponse(), True)


def test_static_key_does_not_rotate(login, clock):
    settings = {
        "ACCESS_TOKEN_VALIDITY": 86400,
        "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 1,
        "ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC": False,
    }
    with override_settings(SUPER_TOKENS=settings):
        s = login()
        clock.advance(80000)
        login()
        supertokens.get_session(s.request(), HttpResponse(), True)


CURRENT_KEY = {"value": "first key, at least some bytes long"}


def user_key():
    return CURRENT_KEY["value"]


def test_key_function_supplies_the_key(login):
    calls = []

    def key():
        calls.append(1)
        return CURRENT_KEY["value"]

    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": key}):
        s = login()
        supertokens.get_session(s.request(), HttpResponse(), True)
        assert len(calls) >= 2, "called on every sign and verify"
        CURRENT_KEY["value"] = b"a different key, as bytes, 256 bits or more"
        try:
            with pytest.raises(SuperTokensTryRefreshTokenException):
                supertokens.get_session(s.request(), HttpResponse(), True)
        finally:
            CURRENT_KEY["value"] = "first key, at least some bytes long"
        supertokens.get_session(s.request(), HttpResponse(), True)


def test_key_function_as_a_dotted_path(login):
    path = f"{__name__}.user_key"
    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": path}):
        s = login()
        supertokens.get_session(s.request(), HttpResponse(), True)
    # A token signed with the user's key is not valid under the stored key.
    with pytest.raises(SuperTokensTryRefreshTokenException):
        supertokens.get_session(s.request(), HttpResponse(), True)


@pytest.mark.parametrize(
    "function, message",
    [
        (lambda: 1 / 0, "ZeroDivisionError"),
        (lambda: 12345, "must return str or bytes, not int"),
        (lambda: "", "empty"),
        (lambda: "31 bytes, one short of 256 bits", "shorter than 256 bits"),
    ],
    ids=["raises", "wrong-type", "empty", "short"],
)
def test_a_failing_key_function_is_a_general_error(function, message, user_id):
    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": function}):
        with pytest.raises(SuperTokensGeneralException, match=message):
            supertokens.create_new_session(HttpResponse(), user_id)
