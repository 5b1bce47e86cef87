"""The sessions admin (by user, created, expiry; revoke) and the
``tessera_sessions`` / ``tessera_revoke`` management commands."""

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.http import HttpResponse

from tessera_django import supertokens

URL = "/admin/tessera_django/tesserasession/"


def _sessions(user_id, n):
    return [supertokens.create_new_session(HttpResponse(), user_id).get_handle() for _ in range(n)]


def _listed(response):
    return re.findall(r'name="handle" value="([^"]+)"', response.content.decode())


def test_admin_lists_a_users_sessions_with_times(admin_client, user_id, login):
    handles = _sessions(user_id, 3)
    other = _sessions(user_id + "-other", 1)
    response = admin_client.get(URL, {"user_id": user_id})
    assert response.status_code == 200
    body = response.content.decode()
    assert sorted(_listed(response)) == sorted(handles)
    assert other[0] not in body
    # Created, last-active and expiry columns, in UTC: one row per session.
    assert len(re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body)) == 9
    # No tokens on the page.
    token = login().jar["sRefreshToken"]
    assert token not in admin_client.get(URL, {"user_id": user_id}).content.decode()


def test_admin_index_links_the_sessions(admin_client):
    assert URL in admin_client.get("/admin/").content.decode()


def test_admin_revokes_selected_and_all(admin_client, user_id):
    handles = _sessions(user_id, 3)
    stranger = _sessions(user_id + "-x", 1)[0]
    response = admin_client.post(
        URL, {"user_id": user_id, "handle": [handles[0], stranger], "revoke_selected": "1"}
    )
    assert response.status_code == 302
    assert sorted(supertokens.get_all_session_handles_for_user(user_id)) == sorted(handles[1:])
    # Another user's session, smuggled into the form, is not revoked.
    assert supertokens.get_all_session_handles_for_user(user_id + "-x") == [stranger]
    admin_client.post(URL, {"user_id": user_id, "revoke_all": "1"})
    assert supertokens.get_all_session_handles_for_user(user_id) == []


def test_admin_integer_ids_and_bad_input(admin_client):
    handle = _sessions(424242, 1)[0]
    assert _listed(admin_client.get(URL, {"user_id": "424242", "int": "1"})) == [handle]
    assert _listed(admin_client.get(URL, {"user_id": "424242"})) == []
    for bad in ({"user_id": "abc", "int": "1"}, {"user_id": "x" * 5000}, {"user_id": "\x00"}):
        assert admin_client.get(URL, bad).status_code == 200
        assert admin_client.post(URL, {**bad, "revoke_all": "1"}).status_code in (200, 302)


@pytest.mark.django_db
def test_admin_needs_permissions(client, user_id):
    handle = _sessions(user_id, 1)[0]
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(URL, {"user_id": user_id}).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_tesserasession"))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    assert _listed(client.get(URL, {"user_id": user_id})) == []  # no checkboxes without delete
    assert handle in client.get(URL, {"user_id": user_id}).content.decode()
    assert client.post(URL, {"user_id": user_id, "revoke_all": "1"}).status_code == 403
    assert supertokens.get_all_session_handles_for_user(user_id) == [handle]


def _cmd(name, *args):
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def test_command_lists_and_revokes(user_id):
    handles = _sessions(user_id, 2)
    out = _cmd("tessera_sessions", user_id)
    assert sorted(re.findall(r"^(\S+)  created ", out, re.M)) == sorted(handles)
    assert out.rstrip().endswith(f"2 session(s) for user {user_id!r}")
    assert "Revoked 1 session(s)" in _cmd("tessera_revoke", user_id, "--handle", handles[0])
    assert supertokens.get_all_session_handles_for_user(user_id) == [handles[1]]
    assert "Revoked 1 session(s)" in _cmd("tessera_revoke", user_id)
    assert _cmd("tessera_sessions", user_id).strip() == f"0 session(s) for user {user_id!r}"


def test_command_refuses_other_users_handles_and_bad_ids(user_id):
    mine = _sessions(user_id, 1)[0]
    theirs = _sessions(user_id + "-y", 1)[0]
    with pytest.raises(CommandError, match="not sessions of user"):
        _cmd("tessera_revoke", user_id, "--handle", theirs)
    assert supertokens.get_all_session_handles_for_user(user_id + "-y") == [theirs]
    with pytest.raises(CommandError, match="not an integer"):
        _cmd("tessera_sessions", "abc", "--int")
    # An over-long id: no sessions, or a clean CommandError (never a traceback).
    try:
        assert "0 session(s)" in _cmd("tessera_sessions", "x" * 5000)
    except CommandError:
        pass
    handle = _sessions(77, 1)[0]
    assert handle in _cmd("tessera_sessions", "77", "--int")
    assert handle not in _cmd("tessera_sessions", "77")
    assert supertokens.get_all_session_handles_for_user(user_id) == [mine]
