"""The whole story through Django's test client and real views: log in, call
a protected view with the anti-CSRF header, let the access token expire,
refresh, reuse the old refresh token and see theft detected."""

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings

from tessera_django import supertokens
from tessera_django.exceptions import SuperTokensTokenTheftException

import support
from support import ACCESS, ID_REFRESH, REFRESH


def _post(client, path, anti_csrf=None, **data):
    extra = {"HTTP_ANTI_CSRF": anti_csrf} if anti_csrf else {}
    return client.post(path, data=data, content_type="application/json", **extra)


def test_full_story_through_the_test_client(user_id, clock):
    client = Client()

    # 1. Log in.
    login = _post(client, "/login", user_id=user_id, payload={"role": "reader"}, info={"n": 0})
    assert login.status_code == 200
    handle = login.json()["handle"]
    assert set(support.cookies(login)) == {ACCESS, REFRESH, ID_REFRESH}
    anti_csrf = login["anti-csrf"]

    # 2. A protected view, with the anti-CSRF header; GET without it.
    ok = _post(client, "/protected", anti_csrf=anti_csrf)
    assert ok.status_code == 200
    assert ok.json() == {"user_id": user_id, "payload": {"role": "reader"}, "handle": handle}
    assert client.get("/protected").status_code == 200
    # A POST without the header fails the anti-CSRF check: try refresh.
    no_csrf = _post(client, "/protected")
    assert no_csrf.status_code == 401
    assert no_csrf.json() == {"message": "try refresh token"}
    assert not no_csrf.cookies

    # Session info through the session object.
    assert _post(client, "/session-info", anti_csrf=anti_csrf, n=1).json() == {"updated": True}
    assert client.get("/session-info").json() == {"info": {"n": 1}}

    # 3. The access token expires.
    clock.advance(3601)
    expired = _post(client, "/protected", anti_csrf=anti_csrf)
    assert expired.status_code == 401
    assert expired.json() == {"message": "try refresh token"}
    assert not expired.cookies  # try-refresh leaves the cookies alone

    # 4. Refresh.
    old_refresh_token = client.cookies[REFRESH].value
    refreshed = client.post("/refresh/")
    assert refreshed.status_code == 200
    assert refreshed.json() == {"user_id": user_id}
    assert set(support.cookies(refreshed)) == {ACCESS, REFRESH, ID_REFRESH}
    assert client.cookies[REFRESH].value != old_refresh_token
    new_anti_csrf = refreshed["anti-csrf"]
    assert new_anti_csrf != anti_csrf

    # The old anti-CSRF token no longer works; the new one does, and the
    # first use of the new access token replaces it once more.
    assert _post(client, "/protected", anti_csrf=anti_csrf).status_code == 401
    after = _post(client, "/protected", anti_csrf=new_anti_csrf)
    assert after.status_code == 200
    assert after.json()["handle"] == handle
    assert set(support.cookies(after)) == {ACCESS}
    assert _post(client, "/protected", anti_csrf=new_anti_csrf).status_code == 200

    # 5. Reuse the old refresh token: theft.
    client.cookies[REFRESH] = old_refresh_token
    theft = client.post("/refresh/")
    assert theft.status_code == 440  # the view's own handling, as in the reference library's docs
    assert theft.json() == {"theft": True, "user_id": user_id, "handle": handle}
    support.assert_cleared(theft)

    # The session is gone: cookies cleared, row revoked.
    assert supertokens.get_all_session_handles_for_user(user_id) == []
    gone = _post(client, "/protected", anti_csrf=new_anti_csrf)
    assert gone.status_code == 401
    assert gone.json() == {"message": "unauthorised"}
    assert client.post("/refresh/").status_code == 440


def test_theft_through_the_middleware(user_id):
    """A view that lets the theft exception propagate: the middleware answers
    with the session-expired status and clears the cookies."""
    client = Client()
    _post(client, "/login", user_id=user_id)
    stolen = client.cookies[REFRESH].value
    client.post("/refresh/")
    # Using the new access token commits the new refresh token; only then is
    # the old one superseded (until then the old one may be retried).
    assert client.get("/protected").status_code == 200
    client.cookies[REFRESH] = stolen
    with override_settings(SUPER_TOKENS={"SESSION_EXPIRED_STATUS_CODE": 440}):
        response = client.post("/api/refresh")
    assert response.status_code == 440
    assert response.json() == {"message": "token theft detected"}
    support.assert_cleared(response)


@override_settings(SUPER_TOKENS={"REVOKE_SESSION_ON_TOKEN_THEFT": False})
def test_theft_without_revocation_leaves_the_session(user_id):
    client = Client()
    handle = _post(client, "/login", user_id=user_id).json()["handle"]
    stolen = client.cookies[REFRESH].value
    client.post("/refresh/")
    assert client.get("/protected").status_code == 200
    # The /refresh/ view revokes by handle itself (the reference library leaves that to the
    # caller), so call the API directly to see the setting's effect.
    response = HttpResponse()
    with pytest.raises(SuperTokensTokenTheftException):
        supertokens.refresh_session(support.request({REFRESH: stolen, ID_REFRESH: "x"}), response)
    support.assert_cleared(response)
    assert supertokens.get_all_session_handles_for_user(user_id) == [handle]
    # The legitimate client goes on.
    assert client.get("/protected").status_code == 200


def test_logout_in_the_reference_librarys_manual_style(user_id):
    client = Client()
    login = _post(client, "/login", user_id=user_id)
    anti_csrf = login["anti-csrf"]
    assert client.post("/protected-manual", HTTP_ANTI_CSRF=anti_csrf).json() == {"user_id": user_id}
    missing = client.post("/protected-manual")
    assert missing.status_code == 440 and missing.content == b"try refresh token"

    logout = client.post("/logout", HTTP_ANTI_CSRF=anti_csrf)
    assert logout.json() == {"revoked": True}
    support.assert_cleared(logout)
    after = client.post("/protected-manual", HTTP_ANTI_CSRF=anti_csrf)
    assert after.status_code == 440 and after.content == b"unauthorised"
    support.assert_cleared(after)


def test_by_handle_and_by_user_views(user_id):
    client = Client()
    handles = {_post(client, "/login", user_id=user_id, info={"i": i}).json()["handle"] for i in range(2)}
    listed = client.get(f"/users/{user_id}/sessions").json()["handles"]
    assert set(listed) == handles
    handle = listed[0]
    assert client.put(f"/sessions/{handle}", data={"new": 1}, content_type="application/json").json() == {"updated": True}
    assert client.get(f"/sessions/{handle}").json() == {"info": {"new": 1}}
    assert client.delete(f"/sessions/{handle}").json() == {"revoked": True}
    assert client.delete(f"/sessions/{handle}").json() == {"revoked": False}
    assert client.get(f"/sessions/{handle}").status_code == 404
    assert client.delete(f"/users/{user_id}/sessions").json() == {"revoked": True}
    assert client.get(f"/users/{user_id}/sessions").json() == {"handles": []}


def test_integer_user_ids_through_views():
    import random

    uid = random.randrange(10**9, 10**12)
    client = Client()
    assert _post(client, "/login", user_id=uid).json()["user_id"] == uid
    assert client.get(f"/users/{uid}/sessions?int=1").json()["handles"]
    assert client.get(f"/users/{uid}/sessions").json()["handles"] == []  # "uid" is another user


def test_options_view():
    response = Client().options("/options")
    assert response["Access-Control-Allow-Headers"] == (
        "content-type, anti-csrf, supertokens-sdk-name, supertokens-sdk-version"
    )
    assert response["Access-Control-Allow-Credentials"] == "true"
    refresh_options = Client().options("/refresh/")
    assert "anti-csrf" in refresh_options["Access-Control-Allow-Headers"]
