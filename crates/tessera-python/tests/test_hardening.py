"""Findings of the outside review: deeply nested JSON, the security-event
bridge to Python's logging, no cookie clearing for requests without session
cookies, Cache-Control: no-store on responses that carry session state, and
conflicting same-name cookies (cookie tossing)."""

import logging
import threading

import pytest
from django.http import HttpResponse
from django.test import Client

from tessera_django import _native, supertokens
from tessera_django.exceptions import (
    SuperTokensGeneralException,
    SuperTokensTokenTheftException,
    SuperTokensUnauthorizedException,
)

import support
from support import ACCESS, ID_REFRESH, REFRESH


def _post(client, path, anti_csrf=None, **data):
    extra = {"HTTP_ANTI_CSRF": anti_csrf} if anti_csrf else {}
    return client.post(path, data=data, content_type="application/json", **extra)


# -- deeply nested JSON -----------------------------------------------------------


def nested(depth, leaf=1):
    """``depth`` levels of lists and dicts around ``leaf``."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth", [128, 500])
@pytest.mark.parametrize("what", ["jwt_payload", "session_info"])
def test_too_deeply_nested_json_is_named_before_anything_is_written(what, depth, user_id):
    value = nested(depth)
    response = HttpResponse()
    kwargs = {what: value}
    with pytest.raises(SuperTokensGeneralException) as raised:
        supertokens.create_new_session(response, user_id, **kwargs)
    message = str(raised.value)
    assert "nested too deeply" in message and f"{depth} levels" in message, message
    assert f"at most {_native.MAX_JSON_DEPTH} " in message
    assert "not valid JSON" not in message
    assert supertokens.get_all_session_handles_for_user(user_id) == []
    support.assert_untouched(response)


def test_the_depth_limit_is_serde_jsons():
    assert _native.MAX_JSON_DEPTH == 127  # 128 levels: serde_json's recursion limit


def test_deeper_than_pythons_recursion_limit_says_so_too(user_id):
    with pytest.raises(SuperTokensGeneralException, match="nested too deeply") as raised:
        supertokens.create_new_session(HttpResponse(), user_id, session_info=nested(100_000))
    assert "at most 127" in str(raised.value)
    assert supertokens.get_all_session_handles_for_user(user_id) == []


def test_too_deeply_nested_session_info_updates_change_nothing(login):
    s = login(info={"kept": True})
    too_deep = nested(128)
    with pytest.raises(SuperTokensGeneralException, match="nested too deeply"):
        supertokens.update_session_info(s.session.get_handle(), too_deep)
    response = HttpResponse()
    session = supertokens.get_session(s.request(), response, True)
    with pytest.raises(SuperTokensGeneralException, match="nested too deeply"):
        session.update_session_info(too_deep)
    assert supertokens.get_session_info(s.session.get_handle()) == {"kept": True}


def test_json_at_the_depth_limit_round_trips(login):
    deepest = nested(_native.MAX_JSON_DEPTH)
    s = login(payload=deepest, info=deepest)
    session = supertokens.get_session(s.request(), HttpResponse(), True)
    assert session.get_jwt_payload() == deepest
    assert session.get_session_info() == deepest
    refreshed, _ = s.refresh()
    assert refreshed.get_jwt_payload() == deepest
    # Brackets inside strings are text, not nesting.
    text = {"s": "[{" * 1000 + '\\"]}' * 3}
    assert login(payload=text).session.get_jwt_payload() == text


# -- security events reach Python's logging -------------------------------------


def _steal(client, user_id):
    """A theft through the test client: the old refresh token reused after
    the new one was committed. Returns the session's handle and the tokens
    the client held."""
    handle = _post(client, "/login", user_id=user_id).json()["handle"]
    stolen = client.cookies[REFRESH].value
    first_access = client.cookies[ACCESS].value
    client.post("/refresh/")
    assert client.get("/protected").status_code == 200
    tokens = {stolen, first_access, client.cookies[ACCESS].value, client.cookies[REFRESH].value}
    client.cookies[REFRESH] = stolen
    response = client.post("/api/refresh")
    assert response.json() == {"message": "token theft detected"}
    return handle, tokens


def _security_records(caplog):
    return [r for r in caplog.records if r.name == "tessera.security"]


def test_token_theft_is_logged_to_tessera_security(caplog, user_id):
    caplog.set_level(logging.WARNING, logger="tessera.security")
    client = Client()
    handle, tokens = _steal(client, user_id)
    records = _security_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.WARNING
    assert record.event == "token_theft"
    assert record.user_id == user_id
    assert record.session_revoked is True
    assert record.session_handle == handle
    assert supertokens.get_all_session_handles_for_user(user_id) == []  # revoked
    assert record.tessera_fields["event"] == "token_theft"
    text = record.getMessage()
    assert "token theft" in text and f"user_id={user_id}" in text and "session_revoked=True" in text
    # Never a token, in the message or anywhere on the record.
    dump = text + repr(vars(record))
    for token in tokens:
        assert token not in dump


def test_a_superseded_access_token_is_logged_too(caplog, login, user_id):
    """The core's second security event: two refreshes of one refresh token
    (a thief refreshed too); the first child used wins, the other's access
    token is refused and reported."""
    caplog.set_level(logging.WARNING, logger="tessera.security")
    s = login()
    children = []
    for _ in range(2):
        response = HttpResponse()
        supertokens.refresh_session(s.request(), response)
        children.append((support.values(response), response["anti-csrf"]))
    (winner, winner_csrf), (loser, loser_csrf) = children
    supertokens.get_session(support.request({**s.jar, **winner}, anti_csrf=winner_csrf), HttpResponse(), True)
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.get_session(support.request({**s.jar, **loser}, anti_csrf=loser_csrf), HttpResponse(), True)
    records = _security_records(caplog)
    assert [r.event for r in records] == ["superseded_access_token"], [r.getMessage() for r in records]
    assert records[0].user_id == user_id and records[0].session_handle == s.session.get_handle()
    for token in list(winner.values()) + list(loser.values()):
        assert token not in records[0].getMessage()


def test_a_refresh_without_theft_logs_nothing(caplog, login):
    caplog.set_level(logging.DEBUG, logger="tessera.security")
    login().refresh()
    assert _security_records(caplog) == []


class _ReentrantHandler(logging.Handler):
    """Calls Tessera from inside ``emit``: the bridge must not hold anything
    while Python's logging runs."""

    def __init__(self, user_id):
        super().__init__(logging.WARNING)
        self.user_id = user_id
        self.seen = []

    def emit(self, record):
        self.seen.append(supertokens.get_all_session_handles_for_user(self.user_id))


def test_the_bridge_cannot_deadlock_with_a_handler_that_calls_tessera(user_id):
    logger = logging.getLogger("tessera.security")
    handler = _ReentrantHandler(user_id)
    logger.addHandler(handler)
    done = threading.Event()
    failures = []

    def theft():
        try:
            _steal(Client(), user_id)
        except Exception as e:  # pragma: no cover - reported below
            failures.append(e)
        finally:
            done.set()

    try:
        worker = threading.Thread(target=theft, daemon=True)
        worker.start()
        assert done.wait(30), "deadlock: the theft did not finish within 30 s"
    finally:
        logger.removeHandler(handler)
    assert not failures, failures
    assert len(handler.seen) == 1


# -- no cookie clearing for requests without session cookies ------------------------


@pytest.mark.parametrize("path", ["/refresh/", "/api/refresh", "/protected", "/logout", "/api/me"])
def test_a_cookieless_post_gets_no_set_cookie(path):
    """A cross-site form POST carries no SameSite=Lax cookies: answering it
    with cleared cookies would let any site log the user out."""
    response = Client().post(path, HTTP_COOKIE="csrftoken=abc; theme=dark")
    assert response.status_code in (401, 440), response.status_code
    assert not response.cookies, response.cookies.output()
    assert not response.has_header("id-refresh-token")


def test_a_post_with_a_dead_session_still_clears(user_id):
    client = Client()
    _post(client, "/login", user_id=user_id)
    supertokens.revoke_all_sessions_for_user(user_id)
    client.cookies.pop(ACCESS)
    response = client.post("/refresh/")
    support.assert_cleared(response)


# -- Cache-Control: no-store ------------------------------------------------------------


def _directives(response):
    assert response.has_header("Cache-Control"), "no Cache-Control"
    return [d.split("=")[0].strip().lower() for d in response["Cache-Control"].split(",")]


def test_sign_in_and_a_promoted_access_token_are_not_stored(user_id):
    client = Client()
    login = _post(client, "/login", user_id=user_id)
    assert "no-store" in _directives(login)
    assert client.post("/refresh/").status_code == 200
    promoted = client.get("/protected")
    assert set(support.cookies(promoted)) == {ACCESS}  # the new access token
    assert "no-store" in _directives(promoted)
    plain = client.get("/protected")
    assert not plain.cookies and not plain.has_header("Cache-Control")


def test_the_api_itself_sets_no_store_on_the_response(user_id):
    """Without the middleware: the core appends no-store through the
    binding's list-header writer, keeping what the view had set."""
    response = HttpResponse()
    response["Cache-Control"] = "private"
    supertokens.create_new_session(response, user_id)
    assert _directives(response) == ["private", "no-store"]


def test_a_view_that_weakens_cache_control_after_sign_in_ends_with_no_store(user_id):
    response = _post(Client(), "/login-cached", user_id=user_id)
    assert response.status_code == 200
    directives = _directives(response)
    assert {"public", "max-age", "no-store"} <= set(directives), response["Cache-Control"]
    stricter = _post(Client(), "/login-cached", user_id=user_id, cache_control="no-store, private")
    assert stricter["Cache-Control"] == "no-store, private"  # left as the view set it


def test_responses_without_session_state_get_no_cache_control():
    assert not Client().options("/options").has_header("Cache-Control")


# -- two cookies of one name (cookie tossing) ---------------------------------------------


def _session(user_id):
    response = HttpResponse()
    supertokens.create_new_session(response, user_id)
    return support.values(response), response["anti-csrf"]


@pytest.mark.parametrize("attacker_first", [True, False])
def test_two_access_token_cookies_are_unauthorized_never_the_attackers_session(attacker_first, user_id):
    attacker, _ = _session(user_id + "-attacker")
    victim, _ = _session(user_id)
    pair = [attacker[ACCESS], victim[ACCESS]]
    if not attacker_first:
        pair.reverse()
    header = f"{ACCESS}={pair[0]}; {ACCESS}={pair[1]}; {ID_REFRESH}={victim[ID_REFRESH]}"
    response = Client().get("/protected", HTTP_COOKIE=header)
    assert response.status_code == 401, response.content
    assert response.json() == {"message": "unauthorised"}
    # The same cookie twice is not a conflict.
    same = f"{ACCESS}={victim[ACCESS]}; {ACCESS}={victim[ACCESS]}; {ID_REFRESH}={victim[ID_REFRESH]}"
    assert Client().get("/protected", HTTP_COOKIE=same).json()["user_id"] == user_id


def test_two_refresh_token_cookies_are_unauthorized(user_id):
    attacker, _ = _session(user_id + "-attacker")
    victim, _ = _session(user_id)
    header = f"{REFRESH}={attacker[REFRESH]}; {REFRESH}={victim[REFRESH]}; {ID_REFRESH}={victim[ID_REFRESH]}"
    request = support.request({})
    request.META["HTTP_COOKIE"] = header
    request.COOKIES.update({REFRESH: attacker[REFRESH], ID_REFRESH: victim[ID_REFRESH]})
    with pytest.raises(SuperTokensUnauthorizedException):
        supertokens.refresh_session(request, HttpResponse())
    assert supertokens.get_all_session_handles_for_user(user_id + "-attacker")  # nothing revoked


def test_the_theft_exception_says_which_kind_of_reuse(login, clock):
    """reuse_kind (Tessera's addition): the superseded refresh token reused
    soon after the refresh is "within_grace" (what a flaky client does; no
    grace window is configured, so it is still theft, only classified), and
    the same reuse later is "silent_thief"."""
    for wait, kind in ((1, "within_grace"), (3600, "silent_thief")):
        s = login()
        old = dict(s.jar)
        s.refresh()
        supertokens.get_session(s.request(), HttpResponse(), True)  # commits the child
        clock.advance(wait)
        with pytest.raises(SuperTokensTokenTheftException) as caught:
            supertokens.refresh_session(support.request(old), HttpResponse())
        assert caught.value.get_reuse_kind() == kind
        assert caught.value.reuse_kind == kind


def test_a_grace_period_lets_a_client_reuse_the_replaced_refresh_token(settings, login, clock):
    """REFRESH_TOKEN_GRACE_PERIOD (off by default): within it, the refresh
    token a refresh replaced is answered with working tokens (a second tab
    that refreshed with it too), not theft; after it, theft as before."""
    settings.SUPER_TOKENS = {"REFRESH_TOKEN_GRACE_PERIOD": 30}
    s = login()
    old = dict(s.jar)
    s.refresh()
    supertokens.get_session(s.request(), HttpResponse(), True)  # commits the child
    clock.advance(5)
    response = HttpResponse()
    supertokens.refresh_session(support.request(old), response)
    tab = {**old, **support.values(response)}
    session = supertokens.get_session(support.request(tab, anti_csrf=response["anti-csrf"]), HttpResponse(), True)
    assert session.get_handle() == s.session.get_handle()
    assert supertokens.get_all_session_handles_for_user(s.session.get_user_id()) == [session.get_handle()]
    clock.advance(60)
    with pytest.raises(SuperTokensTokenTheftException) as caught:
        supertokens.refresh_session(support.request(old), HttpResponse())
    assert caught.value.get_reuse_kind() == "silent_thief"


def test_the_grace_period_is_bounded(settings):
    from tessera_django import _state

    for bad in (-1, 301, "30", True):
        settings.SUPER_TOKENS = {"REFRESH_TOKEN_GRACE_PERIOD": bad}
        with pytest.raises(SuperTokensGeneralException, match="REFRESH_TOKEN_GRACE_PERIOD"):
            _state.get()


def test_idle_timeout_and_absolute_lifetime_end_a_session_at_refresh(settings, login, clock, user_id):
    """IDLE_TIMEOUT and ABSOLUTE_LIFETIME (seconds, off by default): the
    refresh of a session past either answers Unauthorized naming which, and
    the session is gone."""
    settings.SUPER_TOKENS = {"ACCESS_TOKEN_VALIDITY": 60, "IDLE_TIMEOUT": 600, "ABSOLUTE_LIFETIME": 3000}
    idle = login(uid=f"{user_id}-idle")
    clock.advance(601)
    with pytest.raises(SuperTokensUnauthorizedException, match="idle_timeout"):
        idle.refresh()
    assert supertokens.get_all_session_handles_for_user(f"{user_id}-idle") == []
    # Refreshing (and using the new tokens) keeps a session alive; the
    # absolute lifetime ends it anyway.
    busy = login(uid=f"{user_id}-busy")
    for _ in range(5):
        clock.advance(500)
        busy.refresh()
        supertokens.get_session(busy.request(), HttpResponse(), True)
    clock.advance(550)  # 3050 s old, 550 s since the last rotation
    with pytest.raises(SuperTokensUnauthorizedException, match="absolute_lifetime"):
        busy.refresh()
    assert supertokens.get_all_session_handles_for_user(f"{user_id}-busy") == []


def test_lifetime_settings_are_checked(settings):
    from tessera_django import _state

    for key, bad in (("IDLE_TIMEOUT", 0), ("ABSOLUTE_LIFETIME", -5), ("IDLE_TIMEOUT", "600")):
        settings.SUPER_TOKENS = {key: bad}
        with pytest.raises(SuperTokensGeneralException, match=key):
            _state.get()
    settings.SUPER_TOKENS = {"IDLE_TIMEOUT": 30, "ACCESS_TOKEN_VALIDITY": 60}
    with pytest.raises(SuperTokensGeneralException, match="idle"):
        _state.get()
