"""``manage.py remove_old_tokens`` (the reference library's command name)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.http import HttpResponse
from django.test import override_settings

from tessera_django import supertokens


def _run(*args):
    out = StringIO()
    call_command("remove_old_tokens", *args, stdout=out)
    return out.getvalue()


def test_removes_expired_sessions_only(user_id, clock):
    old = [supertokens.create_new_session(HttpResponse(), user_id).get_handle() for _ in range(3)]
    clock.advance(2000 * 3600)
    fresh = supertokens.create_new_session(HttpResponse(), user_id).get_handle()
    clock.advance(400 * 3600 + 1)  # the first three are now past 2400 h

    dry = _run("--dry-run")
    assert int(dry.split()[0]) >= 3
    assert set(supertokens.get_all_session_handles_for_user(user_id)) == set(old) | {fresh}

    removed = _run("--batch-size", "2")
    assert removed.startswith("Removed ") and int(removed.split()[1]) >= 3
    assert supertokens.get_all_session_handles_for_user(user_id) == [fresh]
    assert _run() == "Removed 0 expired session(s)\n"


def test_bad_batch_size():
    with pytest.raises(CommandError, match="at least 1"):
        _run("--batch-size", "0")


def test_database_errors_become_command_errors():
    url = "postgres://postgres@127.0.0.1:1/x"
    with override_settings(SUPER_TOKENS={"DATABASE_URL": url, "DATABASE_ACQUIRE_TIMEOUT": 0.3}):
        with pytest.raises(CommandError, match="could not start"):
            _run()
