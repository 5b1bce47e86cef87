"""Session devices through real Django requests: what ``create_new_session(...,
request=request, device_label=...)`` records and what
``get_all_sessions_for_user`` lists (docs/PROTOCOL.md §3.1, §3.5)."""

import io
import json

import pytest
from django.core.management import call_command
from django.http import HttpResponse

from tessera_django import supertokens
from tessera_django.exceptions import SuperTokensGeneralException

import support

UA = "Mozilla/5.0 (X11; Linux x86_64) TesseraTest/1.0"
KEYS = {
    "session_handle",
    "created_at",
    "last_refreshed_at",
    "last_active_at",
    "expires_at",
    "user_agent",
    "client_address",
    "device_label",
}


def sign_in(client, user_id, label=None, path="/devices/login", **meta):
    body = {"user_id": user_id}
    if label is not None:
        body["label"] = label
    response = client.post(path, json.dumps(body), content_type="application/json", **meta)
    assert response.status_code == 200, response.content
    return response.json()["handle"]


def listed(client, user_id, path="/devices/"):
    response = client.get(path + user_id)
    assert response.status_code == 200, response.content
    return response.json()["sessions"]


def test_the_user_agent_and_label_are_recorded_and_listed(client, user_id, clock):
    handle = sign_in(client, user_id, label="Alice's phone", HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.7")
    [row] = listed(client, user_id)
    assert set(row) == KEYS
    assert row["session_handle"] == handle
    assert row["user_agent"] == UA
    assert row["device_label"] == "Alice's phone"
    # RECORD_CLIENT_ADDRESS is off by default: the address is not kept.
    assert row["client_address"] is None
    # Times: int milliseconds since the epoch, from Tessera's clock.
    assert row["created_at"] == clock.now_ms
    assert row["last_refreshed_at"] is None
    assert row["last_active_at"] == row["created_at"]
    assert row["expires_at"] == row["created_at"] + 2400 * 3600 * 1000
    for key in ("created_at", "last_active_at", "expires_at"):
        assert type(supertokens.get_all_sessions_for_user(user_id)[0][key]) is int
    # The same list from Python, and the handles agree.
    assert supertokens.get_all_sessions_for_user(user_id) == [row]
    assert supertokens.get_all_session_handles_for_user(user_id) == [handle]


def test_without_a_request_or_a_user_agent_nothing_is_recorded(client, user_id, clock):
    sign_in(client, user_id)  # the test client sends no User-Agent
    clock.advance(1)
    supertokens.create_new_session(HttpResponse(), user_id, device_label="cli")
    rows = supertokens.get_all_sessions_for_user(user_id)
    assert [(r["user_agent"], r["client_address"], r["device_label"]) for r in rows] == [
        (None, None, None),
        (None, None, "cli"),
    ]


def test_the_client_address_is_kept_only_with_record_client_address(client, user_id, settings):
    sign_in(client, user_id, HTTP_USER_AGENT=UA, REMOTE_ADDR="203.0.113.7")
    settings.SUPER_TOKENS = {"RECORD_CLIENT_ADDRESS": True}
    sign_in(client, user_id, REMOTE_ADDR="203.0.113.8")
    sign_in(client, user_id, REMOTE_ADDR="2001:db8::1")
    sign_in(client, user_id, REMOTE_ADDR="::ffff:192.0.2.1")
    # Not an IP address (a proxy's host name, an address with a port):
    # ignored, the sign-in works.
    sign_in(client, user_id, REMOTE_ADDR="proxy.internal")
    sign_in(client, user_id, REMOTE_ADDR="192.0.2.9:443")
    addresses = sorted(str(r["client_address"]) for r in listed(client, user_id))
    assert addresses == sorted(["None", "203.0.113.8", "2001:db8::1", "192.0.2.1", "None", "None"])
    settings.SUPER_TOKENS = {"RECORD_CLIENT_ADDRESS": False}
    sign_in(client, user_id, REMOTE_ADDR="203.0.113.9")
    assert "203.0.113.9" not in {r["client_address"] for r in listed(client, user_id)}


def test_record_client_address_must_be_a_bool(settings):
    settings.SUPER_TOKENS = {"RECORD_CLIENT_ADDRESS": "yes"}
    with pytest.raises(SuperTokensGeneralException, match="RECORD_CLIENT_ADDRESS must be True or False"):
        supertokens.get_all_session_handles_for_user("anyone")


def test_long_values_are_cut_to_their_caps(client, user_id):
    sign_in(client, user_id, label="L" * 1000, HTTP_USER_AGENT="U" * 10_000)
    [row] = listed(client, user_id)
    assert row["user_agent"] == "U" * 256
    assert row["device_label"] == "L" * 128
    # Multi-byte text is cut at a character boundary, by bytes.
    sign_in(client, user_id, label="é" * 100)
    label = listed(client, user_id)[1]["device_label"]
    assert label == "é" * 64 and len(label.encode()) == 128


def test_a_user_agent_that_is_not_valid_unicode_is_kept_lossily(client, user_id, settings):
    # Django's servers decode headers as latin-1, but a caller can put any
    # str in META: lone surrogates describe a client, they never refuse it.
    settings.SUPER_TOKENS = {"RECORD_CLIENT_ADDRESS": True}
    sign_in(client, user_id, HTTP_USER_AGENT="bad \udcff agent", REMOTE_ADDR="\ud800")
    [row] = listed(client, user_id)
    # Each surrogate's bytes become replacement characters.
    assert row["user_agent"].startswith("bad \ufffd") and row["user_agent"].endswith("\ufffd agent")
    assert row["client_address"] is None


def test_a_bad_device_label_is_refused_before_anything_is_written(user_id):
    with pytest.raises(SuperTokensGeneralException, match="device_label must be a str"):
        supertokens.create_new_session(HttpResponse(), user_id, device_label=42)
    assert supertokens.get_all_sessions_for_user(user_id) == []


def test_last_refreshed_at_is_set_once_the_refreshed_tokens_are_used(client, user_id, clock):
    sign_in(client, user_id, HTTP_USER_AGENT=UA)
    created = clock.now_ms
    clock.advance(3600 + 10)  # the access token has expired
    assert client.get("/protected").status_code == 401
    assert client.post("/refresh/").status_code == 200
    # Refreshed, but the client has not used the new tokens yet.
    [row] = listed(client, user_id)
    assert row["last_refreshed_at"] is None and row["last_active_at"] == created
    clock.advance(5)
    assert client.get("/protected").status_code == 200
    [row] = listed(client, user_id)
    assert row["last_refreshed_at"] == clock.now_ms
    assert row["last_active_at"] == row["last_refreshed_at"]
    assert row["created_at"] == created
    # A refresh never rewrites the device.
    assert row["user_agent"] == UA


def test_sessions_are_listed_oldest_first_and_revoked_ones_are_not(client, user_id, clock):
    handles = []
    for label in ("first", "second", "third"):
        handles.append(sign_in(client, user_id, label=label))
        clock.advance(1)
    rows = listed(client, user_id)
    assert [r["session_handle"] for r in rows] == handles
    assert [r["device_label"] for r in rows] == ["first", "second", "third"]
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    assert client.delete(f"/sessions/{handles[1]}").json() == {"revoked": True}
    assert [r["session_handle"] for r in listed(client, user_id)] == [handles[0], handles[2]]
    supertokens.revoke_all_sessions_for_user(user_id)
    assert listed(client, user_id) == []


def test_an_expired_session_is_not_listed(client, user_id, clock):
    sign_in(client, user_id)
    clock.advance(2400 * 3600 + 1)
    assert listed(client, user_id) == []


def test_the_async_api_records_and_lists_the_same(client, user_id, settings):
    settings.SUPER_TOKENS = {"RECORD_CLIENT_ADDRESS": True}
    handle = sign_in(
        client, user_id, label="tablet", path="/async/devices/login", HTTP_USER_AGENT=UA, REMOTE_ADDR="198.51.100.4"
    )
    [row] = listed(client, user_id, path="/async/devices/")
    assert (row["session_handle"], row["user_agent"], row["client_address"], row["device_label"]) == (
        handle,
        UA,
        "198.51.100.4",
        "tablet",
    )
    assert listed(client, user_id) == [row]


def test_refresh_converged_within_grace(settings, login, clock):
    """``Session.refresh_converged_within_grace()``: False for an ordinary
    refresh, True when the grace window answered a replaced refresh token."""
    settings.SUPER_TOKENS = {"REFRESH_TOKEN_GRACE_PERIOD": 30}
    s = login()
    assert s.session.refresh_converged_within_grace() is False
    old = dict(s.jar)
    session, _ = s.refresh()
    assert session.refresh_converged_within_grace() is False
    supertokens.get_session(s.request(), HttpResponse(), True)  # commits the child
    clock.advance(5)
    again = supertokens.refresh_session(support.request(old), HttpResponse())
    assert again.refresh_converged_within_grace() is True
    assert again.get_handle() == s.session.get_handle()


def test_the_command_and_the_admin_show_the_device(client, admin_client, user_id):
    handle = sign_in(client, user_id, label="work laptop", HTTP_USER_AGENT=UA)
    out = io.StringIO()
    call_command("tessera_sessions", user_id, stdout=out)
    line = next(line for line in out.getvalue().splitlines() if line.startswith(handle))
    assert "label 'work laptop'" in line and UA in line and "last active" in line
    page = admin_client.get("/admin/tessera_django/tesserasession/", {"user_id": user_id}).content.decode()
    assert handle in page and "work laptop / " + UA in page
