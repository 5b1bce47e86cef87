"""Storage in the project's own database: which database, created by
``manage.py migrate``, the in-memory case, pools and the test database."""

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.db.backends.base.creation import BaseDatabaseCreation
from django.http import HttpResponse
from django.test import override_settings

from tessera_django import _state, db, supertokens
from tessera_django.testing import close_connections

import dbtools
from dbtools import BACKEND

TESTS = os.path.dirname(os.path.abspath(__file__))


def test_sessions_are_stored_where_the_documentation_says(user_id):
    session = supertokens.create_new_session(HttpResponse(), user_id, None, {"k": 1})
    handle = session.get_handle()
    tables = connection.introspection.table_names()
    if BACKEND == "sqlite-file":
        # Tessera's own file beside Django's test database.
        assert "tessera_sessions" not in tables
        path = db.tessera_sqlite_path(os.path.abspath(connection.settings_dict["NAME"]))
        assert {"tessera_sessions", "tessera_keys"} <= set(dbtools.sqlite_tables(path))
        rows = dbtools.sqlite_query(path, "SELECT session_info FROM tessera_sessions WHERE session_handle = ?", [handle])
        assert rows == [['{"k":1}']]
    elif BACKEND == "sqlite":
        # Django's test database is in memory: Tessera cannot share it and
        # keeps its own in-memory database instead.
        assert "mode=memory" in connection.settings_dict["NAME"]
        assert "tessera_sessions" not in tables
        assert supertokens.get_session_info(handle) == {"k": 1}
    else:
        # The test database pytest-django created (test_... name), with the
        # tables Tessera's migration made, holding Tessera's rows.
        assert connection.settings_dict["NAME"] == "tessera_django_pytest"
        assert {"tessera_sessions", "tessera_keys"} <= set(tables)
        with connection.cursor() as c:
            c.execute("SELECT user_id, session_info FROM tessera_sessions WHERE session_handle = %s", [handle])
            assert list(c.fetchall()) == [(f'"{user_id}"', '{"k":1}')]


@pytest.mark.skipif(BACKEND != "sqlite", reason="the in-memory database is the SQLite case")
def test_in_memory_database_lives_as_long_as_the_process(user_id):
    handle = supertokens.create_new_session(HttpResponse(), user_id).get_handle()
    first = _state.get()
    with override_settings(SUPER_TOKENS={"ACCESS_TOKEN_VALIDITY": 60}):
        assert _state.get() is not first
        assert supertokens.get_all_session_handles_for_user(user_id) == [handle]
    close_connections()
    assert supertokens.get_all_session_handles_for_user(user_id) == [handle]


def test_pools_are_closed_and_reopened(user_id):
    handle = supertokens.create_new_session(HttpResponse(), user_id).get_handle()
    close_connections()
    assert supertokens.get_all_session_handles_for_user(user_id) == [handle]


def test_destroying_a_test_database_closes_tessera_pools_first(user_id):
    """Django's destroy_test_db, wrapped by tessera_django, closes Tessera's
    pools before the database is dropped (PostgreSQL refuses to drop a
    database with open connections)."""
    supertokens.create_new_session(HttpResponse(), user_id)  # a pool is open
    seen = {}

    class FakeConnection:
        alias = "default"
        vendor = "postgresql"
        settings_dict = {"NAME": "test_something"}

        def close(self):
            pass

    class Probe(BaseDatabaseCreation):
        def _destroy_test_db(self, test_database_name, verbosity):
            from tessera_django import _native

            seen["dropping"] = test_database_name
            seen["pools_still_open"] = _native.close_stores()

    Probe(FakeConnection()).destroy_test_db(verbosity=0)
    assert seen == {"dropping": "test_something", "pools_still_open": 0}


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL refuses to drop a database in use")
def test_close_connections_leaves_no_connection_to_the_test_database(user_id):
    supertokens.create_new_session(HttpResponse(), user_id)
    name = connection.settings_dict["NAME"]

    def others():
        with connection.cursor() as c:
            # The test runs in a transaction, which would see one snapshot.
            c.execute("SELECT pg_stat_clear_snapshot()")
            c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )
            return c.fetchone()[0]

    assert others() >= 1
    close_connections()
    # Closing sends each server process a Terminate; give them a moment to exit.
    deadline = time.monotonic() + 5
    while others() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert others() == 0


def _manage(*args, **env):
    return subprocess.run(
        [sys.executable, "-m", "django", *args, "--settings=testproject.settings"],
        cwd=TESTS,
        env={**os.environ, "PYTHONPATH": TESTS, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manage_py_migrate_creates_the_tables(tmp_path):
    """``manage.py migrate`` in a real (non-test) run creates Tessera's tables
    from the SQL files embedded in the native module; running it again is
    harmless; the app then works on that database."""
    expected = {"tessera_sessions", "tessera_keys", "tessera_changes", "_sqlx_migrations"}
    if BACKEND.startswith("sqlite"):
        path = str(tmp_path / "project.sqlite3")
        env = {"TESSERA_DJANGO_DB": "sqlite-file", "TESSERA_DJANGO_SQLITE_PATH": path}
        for _ in range(2):
            result = _manage("migrate", **env)
            assert result.returncode == 0, result.stderr
        shown = _manage("showmigrations", "tessera_django", **env).stdout
        assert "[X] 0001_initial" in shown and "[X] 0003_tessera_schema_update" in shown
        assert "[X] 0004_tessera_session_lifecycle" in shown
        assert "[X] 0005_tessera_session_devices" in shown
        # Django's tables in the project's file, Tessera's in its own beside it.
        assert "django_migrations" in dbtools.sqlite_tables(path)
        assert not expected & set(dbtools.sqlite_tables(path))
        assert expected <= set(dbtools.sqlite_tables(str(tmp_path / "project.tessera.sqlite3")))
        result = _manage("remove_old_tokens", **env)
        assert result.returncode == 0 and "Removed 0 expired session(s)" in result.stdout
        return
    with dbtools.scratch_database() as name:
        env = {"TESSERA_DJANGO_DB_NAME": name}
        assert not expected & set(dbtools.tables(name))
        for _ in range(2):
            result = _manage("migrate", **env)
            assert result.returncode == 0, result.stderr
        assert expected <= set(dbtools.tables(name))
        result = _manage("remove_old_tokens", "--dry-run", **env)
        assert result.returncode == 0 and "0 expired session(s) would be removed" in result.stdout


def _forget_change_log(run) -> None:
    """Makes a database look as the previous release left it: no change
    log, and sqlx's record of it gone."""
    run("DROP TABLE tessera_changes")
    run("DELETE FROM _sqlx_migrations WHERE version = 4")


LIFECYCLE_COLUMNS = ("committed_hash_1", "previous_hash_2", "superseded_at")


def _forget_session_lifecycle(run) -> None:
    """Makes a database look as the release before the grace window left it:
    no promotion-history columns, and sqlx's record of them gone."""
    for column in LIFECYCLE_COLUMNS:
        run(f"ALTER TABLE tessera_sessions DROP COLUMN {column}")
    run("DELETE FROM _sqlx_migrations WHERE version = 5")


DEVICE_COLUMNS = ("user_agent", "client_address", "device_label")


def _forget_session_devices(run) -> None:
    """Makes a database look as the release before session devices left it:
    no device columns, and sqlx's record of them gone."""
    for column in DEVICE_COLUMNS:
        run(f"ALTER TABLE tessera_sessions DROP COLUMN {column}")
    run("DELETE FROM _sqlx_migrations WHERE version = 6")


def test_manage_py_migrate_upgrades_a_database_of_the_previous_release(tmp_path):
    """A database migrated before the change log existed (Django migrations
    0001 and 0002 applied, SQL migration 0004 not) gets it from
    ``0003_tessera_schema_update`` on the next ``manage.py migrate``, with
    its sessions kept; likewise the promotion-history columns (SQL 0005,
    Django 0004) and the device columns (SQL 0006, Django 0005)."""
    if BACKEND.startswith("sqlite"):
        path = str(tmp_path / "project.sqlite3")
        env = {"TESSERA_DJANGO_DB": "sqlite-file", "TESSERA_DJANGO_SQLITE_PATH": path}
        tessera_file = str(tmp_path / "project.tessera.sqlite3")

        def run(sql):
            import sqlite3

            with sqlite3.connect(tessera_file) as c:
                c.execute(sql)

        def tables():
            return set(dbtools.sqlite_tables(tessera_file))

        def sessions():
            return dbtools.sqlite_query(tessera_file, "SELECT COUNT(*) FROM tessera_sessions")[0][0]

        def device_columns():
            return [
                tuple(r)
                for r in dbtools.sqlite_query(
                    tessera_file, "SELECT user_agent, client_address, device_label FROM tessera_sessions"
                )
            ]
    else:
        ctx = dbtools.scratch_database()
        name = ctx.__enter__()
        env = {"TESSERA_DJANGO_DB_NAME": name}

        def run(sql):
            c = dbtools.connect(name)
            try:
                c.cursor().execute(sql)
            finally:
                c.close()

        def tables():
            return set(dbtools.tables(name))

        def sessions():
            c = dbtools.connect(name)
            try:
                cur = c.cursor()
                cur.execute("SELECT COUNT(*) FROM tessera_sessions")
                return cur.fetchone()[0]
            finally:
                c.close()

        def device_columns():
            c = dbtools.connect(name)
            try:
                cur = c.cursor()
                cur.execute("SELECT user_agent, client_address, device_label FROM tessera_sessions")
                return [tuple(r) for r in cur.fetchall()]
            finally:
                c.close()

    try:
        assert _manage("migrate", **env).returncode == 0
        run(
            "INSERT INTO tessera_sessions (session_handle, user_id, refresh_token_hash_2, "
            "session_info, jwt_payload, created_at, expires_at) VALUES "
            "('kept', '\"u\"', '" + "a" * 64 + "', '{}', '{}', 1, 9999999999999)"
        )
        result = _manage("migrate", "tessera_django", "0002", **env)
        assert result.returncode == 0, result.stderr
        _forget_session_devices(run)
        _forget_session_lifecycle(run)
        _forget_change_log(run)
        assert "tessera_changes" not in tables()
        result = _manage("migrate", **env)
        assert result.returncode == 0, result.stderr
        assert "tessera_changes" in tables()
        assert sessions() == 1
        # 0004_tessera_session_lifecycle's columns are back, the row kept
        # with NULL in them.
        run("SELECT committed_hash_1, previous_hash_2, superseded_at FROM tessera_sessions")
        # Then the previous release's state one step later: 0003 applied
        # (the change log there), 0005's columns not.
        result = _manage("migrate", "tessera_django", "0003", **env)
        assert result.returncode == 0, result.stderr
        _forget_session_devices(run)
        _forget_session_lifecycle(run)
        result = _manage("migrate", **env)
        assert result.returncode == 0, result.stderr
        run("SELECT committed_hash_1, previous_hash_2, superseded_at FROM tessera_sessions")
        assert sessions() == 1
        # The release before session devices: 0004 applied (the lifecycle
        # columns there), SQL migration 0006 not. 0005_tessera_session_devices
        # adds the device columns; the live session is kept, with no device.
        result = _manage("migrate", "tessera_django", "0004", **env)
        assert result.returncode == 0, result.stderr
        _forget_session_devices(run)
        with pytest.raises(Exception):
            run("SELECT user_agent FROM tessera_sessions")
        result = _manage("migrate", **env)
        assert result.returncode == 0, result.stderr
        assert "[X] 0005_tessera_session_devices" in _manage("showmigrations", "tessera_django", **env).stdout
        assert sessions() == 1
        assert device_columns() == [(None, None, None)]
        listed = _manage("tessera_sessions", "u", **env)
        assert listed.returncode == 0, listed.stderr
        assert "kept  created" in listed.stdout and "1 session(s)" in listed.stdout
    finally:
        if not BACKEND.startswith("sqlite"):
            ctx.__exit__(None, None, None)


def test_migration_ignores_other_aliases():
    class Other:
        alias = "reporting"
        vendor = "sqlite"
        settings_dict = {"NAME": ":memory:"}

    assert _state.migrate_connection(Other()) is False


# -- which URL for which Django settings ------------------------------------------


@pytest.mark.parametrize(
    "name, url",
    [
        (":memory:", "sqlite::memory:"),
        ("", "sqlite::memory:"),
        ("file:memorydb_default?mode=memory&cache=shared", "sqlite::memory:"),
        ("/srv/app/db.sqlite3", "sqlite:///srv/app/db.tessera.sqlite3"),
        ("/srv/app/db", "sqlite:///srv/app/db.tessera.sqlite3"),
        ("/srv/app/data.db", "sqlite:///srv/app/data.tessera.db"),
        ("/srv/a b/d%b#1?.sqlite3", "sqlite:///srv/a%20b/d%25b%231%3F.tessera.sqlite3"),
        ("file:/srv/app/db.sqlite3?mode=rw", "sqlite:///srv/app/db.tessera.sqlite3"),
    ],
)
def test_sqlite_urls(name, url):
    assert db.url_for_settings("sqlite", {"NAME": name}) == url


def test_relative_sqlite_path_is_relative_to_the_working_directory():
    assert db.url_for_settings("sqlite", {"NAME": "db.sqlite3"}) == "sqlite://" + os.path.join(
        os.getcwd(), "db.tessera.sqlite3"
    )


def test_postgres_urls(monkeypatch):
    monkeypatch.delenv("PGHOST", raising=False)
    base = {"NAME": "app", "USER": "u@x", "PASSWORD": "p:w/d?", "HOST": "db.example", "PORT": "6543"}
    assert db.url_for_settings("postgresql", base) == "postgres://u%40x:p%3Aw%2Fd%3F@db.example:6543/app"
    assert db.url_for_settings("postgresql", dict(base, HOST="/run/pg", PORT="")) == (
        "postgres://u%40x:p%3Aw%2Fd%3F@localhost/app?host=%2Frun%2Fpg"
    )
    assert db.url_for_settings("postgresql", dict(base, HOST="::1", USER="", PASSWORD="")) == (
        "postgres://[::1]:6543/app"
    )
    with_ssl = dict(base, OPTIONS={"sslmode": "require", "connect_timeout": 3})
    assert db.url_for_settings("postgresql", with_ssl).endswith("/app?sslmode=require")
    monkeypatch.setenv("PGHOST", "pg.internal")
    assert db.url_for_settings("postgresql", dict(base, HOST="")) == (
        "postgres://u%40x:p%3Aw%2Fd%3F@pg.internal:6543/app"
    )


def test_mysql_urls():
    base = {"NAME": "app", "USER": "root", "PASSWORD": "", "HOST": "127.0.0.1", "PORT": "3306"}
    assert db.url_for_settings("mysql", base) == "mysql://root@127.0.0.1:3306/app"
    assert db.url_for_settings("mysql", dict(base, HOST="", PORT="")) == "mysql://root@localhost/app"
    assert db.url_for_settings("mysql", dict(base, HOST="/run/mysqld/mysqld.sock")) == (
        "mysql://root@localhost:3306/app?socket=%2Frun%2Fmysqld%2Fmysqld.sock"
    )
    assert db.url_for_settings("mysql", dict(base, OPTIONS={"unix_socket": "/s.sock"})).endswith(
        "?socket=%2Fs.sock"
    )


def test_unsupported_vendor_is_general():
    from tessera_django.exceptions import SuperTokensGeneralException

    with pytest.raises(SuperTokensGeneralException, match="oracle"):
        db.url_for_settings("oracle", {})


def test_describe_hides_the_password():
    assert db.describe("postgres://u:secret@h:1/d") == "postgres://u:***@h:1/d"
    assert db.describe("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.skipif(BACKEND.startswith("sqlite"), reason="needs a database server")
@pytest.mark.parametrize("how", ["tcp", "socket", "empty-host"])
def test_connects_the_ways_django_does(how, user_id):
    """Unix sockets and an empty HOST work as they do for Django."""
    s = dict(connection.settings_dict)
    if how == "socket":
        s["HOST"] = "/var/run/postgresql" if BACKEND == "postgres" else "/run/mysqld/mysqld.sock"
        s["PORT"] = "" if BACKEND == "mysql" else s["PORT"]
        if not os.path.exists(s["HOST"]):
            pytest.skip(f"no socket at {s['HOST']}")
    elif how == "empty-host":
        s["HOST"] = ""
    url = db.url_for_settings(connection.vendor, s)
    with override_settings(SUPER_TOKENS={"DATABASE_URL": url, "DATABASE_ACQUIRE_TIMEOUT": 5}):
        handle = supertokens.create_new_session(HttpResponse(), user_id).get_handle()
    assert supertokens.get_all_session_handles_for_user(user_id) == [handle]


_TWO_SQLITE_COPIES = """
import sqlite3, sys, time
import django
django.setup()
from django.http import HttpResponse
from django.test import override_settings
from tessera_django import _native, supertokens

path = sys.argv[1]
url = "sqlite://" + path
_native.migrate(url)
with override_settings(SUPER_TOKENS={"DATABASE_URL": url}):
    handle = supertokens.create_new_session(HttpResponse(), "two-copies").get_handle()
    python_side = sqlite3.connect(path, isolation_level=None, timeout=0)
    python_side.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    revoked = supertokens.revoke_session(handle)
    waited = time.monotonic() - started
    python_side.execute("ROLLBACK")
    python_side.close()
print("result", int(revoked), waited)
"""


def test_why_tessera_keeps_its_own_sqlite_file(tmp_path):
    """Python's sqlite3 and the native module each carry a copy of SQLite.
    Inside one process their POSIX file locks do not see each other: a
    write lock held through Python's sqlite3 does not stop Tessera's write.
    Two copies writing one file could corrupt it, hence a file of its own.
    (If this test ever fails, the two share one SQLite library and the
    separate file could be dropped.)

    The experiment runs in a child process, because it does exactly what can
    corrupt a database: in WAL mode one copy may unmap or truncate the
    shared-memory index the other has mapped, and the child then dies of
    SIGBUS (seen once in CI, Django 6.1 / Python 3.12). A child that wrote
    through the other copy's exclusive lock, or that crashed of the two
    copies' disagreement, shows the same thing; only a write that waited
    for the lock or was refused by it (one shared library) fails here."""
    path = str(tmp_path / "shared.sqlite3")
    child = subprocess.run(
        [sys.executable, "-c", _TWO_SQLITE_COPIES, path],
        cwd=TESTS,
        env={**os.environ, "PYTHONPATH": TESTS, "DJANGO_SETTINGS_MODULE": "testproject.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if child.returncode == -7:  # SIGBUS: the two copies' shared memory disagreed
        return
    assert child.returncode == 0, child.stdout + child.stderr
    tag, revoked, seconds = child.stdout.split()[-3:]
    assert (tag, revoked) == ("result", "1"), child.stdout
    assert float(seconds) < 1, "the write waited for the other copy's lock"


@pytest.mark.skipif(BACKEND != "sqlite", reason="switches to another in-memory name only")
def test_manager_follows_the_database_name(monkeypatch):
    """Django's test runner renames the database without a signal; the
    manager notices the new NAME and is rebuilt."""
    from django.db import connections

    first = _state.get()
    assert _state.get() is first
    monkeypatch.setitem(connections.settings["default"], "NAME", "file:other?mode=memory&cache=shared")
    assert _state.get() is not first


def test_create_tables_for_test_databases_built_without_migrations(user_id):
    from tessera_django.testing import create_tables

    assert create_tables() is True  # idempotent: the tables exist already
    assert supertokens.get_all_session_handles_for_user(user_id) == []
