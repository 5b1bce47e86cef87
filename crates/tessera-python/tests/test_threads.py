"""Thread safety under concurrent calls, and the GIL released while a call
waits on the database."""

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import override_settings

from tessera_django import _native, _state, supertokens
from tessera_django.exceptions import SuperTokensUnauthorizedException

import dbtools
import support
from conftest import Login
from dbtools import BACKEND
from support import ACCESS


def _story(uid):
    s = Login(uid, payload={"uid": uid}, info={"n": 0})
    handle = s.session.get_handle()
    for n in range(1, 4):
        assert supertokens.get_session(s.request(), HttpResponse(), True).get_user_id() == uid
        s.refresh()
        first = HttpResponse()
        session = supertokens.get_session(s.request(), first, True)
        s.jar.update(support.values(first))
        session.update_session_info({"n": n})
        assert session.get_jwt_payload() == {"uid": uid}
    assert supertokens.get_session_info(handle) == {"n": 3}
    assert supertokens.get_all_session_handles_for_user(uid) == [handle]
    assert supertokens.revoke_session(handle) is True
    return uid


def test_many_threads_many_sessions(user_id):
    uids = [f"{user_id}-{i}" for i in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(_story, uids)) == uids


def test_racing_first_use_of_sibling_access_tokens(login):
    """Refreshing twice with the same (still committed) refresh token gives
    two children; when both are first used at once, exactly one is committed
    and the other session view is refused."""
    s = login()
    siblings = []
    for _ in range(6):
        response = HttpResponse()
        supertokens.refresh_session(s.request(), response)
        siblings.append(dict(s.jar, **support.values(response)))
    barrier = threading.Barrier(len(siblings))

    def first_use(jar):
        barrier.wait()
        try:
            supertokens.get_session(support.request(jar), HttpResponse(), False)
            return "ok"
        except SuperTokensUnauthorizedException:
            return "unauthorized"

    with ThreadPoolExecutor(max_workers=len(siblings)) as pool:
        outcomes = list(pool.map(first_use, siblings))
    assert sorted(outcomes) == ["ok"] + ["unauthorized"] * (len(siblings) - 1)


def test_calls_while_settings_change(user_id):
    """Managers are rebuilt under running calls without errors."""
    stop = threading.Event()
    errors = []

    def worker(i):
        n = 0
        while not stop.is_set() or n < 5:
            try:
                s = Login(f"{user_id}-{i}")
                supertokens.get_session(s.request(), HttpResponse(), True)
                supertokens.revoke_session(s.session.get_handle())
            except Exception as e:  # noqa: BLE001  (collected and reported)
                errors.append(e)
            n += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for validity in range(20):
        with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_VALIDITY": 60 + validity}):
            _state.get()
            time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join(30)
    assert errors == []


# -- the GIL -------------------------------------------------------------------


@contextmanager
def _sessions_table_locked(sqlite_path=None):
    """Holds a lock that makes a DELETE on tessera_sessions wait. The server
    gives it up by itself after 5 s (SQLite: Tessera's 10 s busy timeout), so
    a binding that kept the GIL makes the test fail, not hang."""
    if BACKEND == "postgres":
        conn = dbtools.connect(connection.settings_dict["NAME"])
        conn.autocommit = False
        with conn.cursor() as c:
            c.execute("SET idle_in_transaction_session_timeout = '5s'")
            c.execute("LOCK TABLE tessera_sessions IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            _release(conn.rollback, conn.close)
    elif BACKEND == "mysql":
        conn = dbtools.connect(connection.settings_dict["NAME"])
        with conn.cursor() as c:
            c.execute("SET SESSION wait_timeout = 5")
            c.execute("LOCK TABLES tessera_sessions WRITE")
        try:
            yield
        finally:
            _release(lambda: conn.cursor().execute("UNLOCK TABLES"), conn.close)
    else:
        # Another process: inside this one, Python's copy of SQLite and the
        # native module's do not see each other's locks (see test_database).
        holder = subprocess.Popen(
            [sys.executable, "-c", _SQLITE_LOCK_HOLDER, sqlite_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout.readline() == b"locked\n"
            yield
        finally:
            _release(lambda: holder.stdin.write(b"release\n"), holder.stdin.flush)
            holder.wait(10)


def _release(*steps):
    """Gives the lock up. If the server (or the holder process) already gave
    it up after its time limit, there is nothing left to do: the test's
    assertions report what went wrong."""
    for step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001
            pass


_SQLITE_LOCK_HOLDER = """
import select, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
deadline = time.monotonic() + 5
while time.monotonic() < deadline and not select.select([sys.stdin], [], [], 0.05)[0]:
    pass
conn.execute("ROLLBACK")
"""


@pytest.fixture
def lockable_database(tmp_path):
    """The database the GIL test locks. Tessera's in-memory SQLite database
    cannot be locked from outside, so the SQLite run uses a file."""
    if not BACKEND.startswith("sqlite"):
        yield None
        return
    path = str(tmp_path / "gil.sqlite3")
    url = "sqlite://" + path
    _native.migrate(url)
    with override_settings(SUPER_TOKENS={"DATABASE_URL": url}):
        yield path


def test_gil_is_released_while_a_call_waits_on_the_database(user_id, lockable_database):
    handle = supertokens.create_new_session(HttpResponse(), user_id).get_handle()
    outcome = {}

    def revoke():
        started = time.monotonic()
        try:
            outcome["value"] = supertokens.revoke_session(handle)
        except Exception as e:  # noqa: BLE001
            outcome["value"] = e
        outcome["waited"] = time.monotonic() - started

    with _sessions_table_locked(lockable_database):
        waiter = threading.Thread(target=revoke)
        waiter.start()
        time.sleep(0.3)  # the call reaches the database and waits on the lock
        # Python work on this thread while the other one waits inside Rust.
        # Had the waiting thread kept the GIL, this thread would only get
        # here after the lock had been given up and the call had returned.
        iterations = 0
        until = time.monotonic() + 0.3
        while time.monotonic() < until:
            iterations += 1
        still_waiting = waiter.is_alive()
    waiter.join(20)

    assert still_waiting, ("the Python thread could not run while the call waited", outcome)
    assert iterations > 10_000
    assert outcome["value"] is True
    assert outcome["waited"] >= 0.6
