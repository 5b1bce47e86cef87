"""The async API called directly (no server): same results, cookies and
exceptions as the blocking API; the calls that wait on the database return
pending futures that complete on the loop."""

import asyncio

import pytest
from django.http import HttpResponse

import support
from tessera_django import supertokens
from tessera_django.exceptions import (
    SuperTokensGeneralException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)


def run(coroutine):
    return asyncio.run(coroutine)


def test_async_lifecycle(user_id):
    async def scenario():
        response = HttpResponse()
        session = await supertokens.acreate_new_session(response, user_id, {"p": 1}, {"i": 1})
        jar = support.values(response)
        anti_csrf = response["anti-csrf"]
        assert session.get_user_id() == user_id and session.get_jwt_payload() == {"p": 1}
        got = await supertokens.aget_session(support.request(jar, anti_csrf=anti_csrf), HttpResponse(), True)
        assert got.get_handle() == session.get_handle()
        assert await got.aget_session_info() == {"i": 1}
        await got.aupdate_session_info({"i": 2})
        assert await supertokens.aget_session_info(session.get_handle()) == {"i": 2}
        await supertokens.aupdate_session_info(session.get_handle(), {"i": 3})
        assert supertokens.get_session_info(session.get_handle()) == {"i": 3}
        assert await supertokens.aget_all_session_handles_for_user(user_id) == [session.get_handle()]
        refreshed_response = HttpResponse()
        refreshed = await supertokens.arefresh_session(support.request(jar), refreshed_response)
        assert refreshed.get_handle() == session.get_handle()
        assert support.values(refreshed_response)["sRefreshToken"] != jar["sRefreshToken"]
        out = HttpResponse()
        await refreshed.arevoke_session()
        with pytest.raises(SuperTokensUnauthorizedException):
            await supertokens.aget_session_info(session.get_handle())
        assert await supertokens.arevoke_session(session.get_handle()) is False
        second = await supertokens.acreate_new_session(out, user_id)
        await supertokens.arevoke_all_sessions_for_user(user_id)
        assert supertokens.get_all_session_handles_for_user(user_id) == []
        assert second.get_user_id() == user_id

    run(scenario())


def test_async_errors_clear_cookies_like_the_sync_api(user_id, login):
    async def scenario():
        # No session: Unauthorized, cookies cleared on the response.
        s = login()
        del s.jar["sIdRefreshToken"]
        response = HttpResponse()
        with pytest.raises(SuperTokensUnauthorizedException):
            await supertokens.aget_session(s.request(), response, True)
        support.assert_cleared(response)
        # Missing anti-csrf: try refresh, nothing cleared.
        session = login()
        response = HttpResponse()
        with pytest.raises(SuperTokensTryRefreshTokenException):
            await supertokens.aget_session(session.request(anti_csrf=False), response, True)
        assert "sAccessToken" not in response.cookies
        # Bad arguments are refused before anything starts.
        with pytest.raises(SuperTokensGeneralException):
            await supertokens.aget_session_info(123)
        with pytest.raises(SuperTokensGeneralException):
            await supertokens.acreate_new_session(HttpResponse(), user_id, {"x": {1, 2}})
        with pytest.raises(SuperTokensGeneralException):
            await supertokens.aget_session(object(), HttpResponse(), False)
        # A revoked session's info: Unauthorized, cookies cleared.
        s = login()
        response = HttpResponse()
        got = await supertokens.aget_session(s.request(), response, True)
        supertokens.revoke_session(got.get_handle())
        with pytest.raises(SuperTokensUnauthorizedException):
            await got.aget_session_info()
        support.assert_cleared(response)

    run(scenario())


def test_database_calls_are_pending_futures_resolved_on_the_loop(user_id):
    """A create waits on the database: the native call returns an unfinished
    future at once, and the loop runs other work while it is pending."""
    from tessera_django import _state

    async def scenario():
        manager = await _state.aget()
        response = HttpResponse()
        future = manager.acreate_new_session(response, user_id, "null", "null")
        assert isinstance(future, asyncio.Future) and not future.done()
        ticks = 0
        while not future.done():
            ticks += 1
            await asyncio.sleep(0)
        assert ticks >= 1
        native = await future
        assert native.user_id == user_id and "sAccessToken" in response.cookies

    run(scenario())
