"""Direct database access for tests, with the drivers Django uses, never
through Tessera: to create scratch databases, inspect tables and hold locks."""

import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, List, Sequence

from django.db import connection

BACKEND = os.environ.get("TESSERA_DJANGO_DB", "sqlite")


def _server_params(dbname=None):
    s = connection.settings_dict
    return {
        "host": s["HOST"] or "127.0.0.1",
        "port": int(s["PORT"]) if s["PORT"] else None,
        "user": s["USER"],
        "password": s["PASSWORD"],
        "dbname": dbname,
    }


def connect(dbname=None):
    """A new raw connection to the current backend's server (autocommit)."""
    p = _server_params(dbname)
    if BACKEND == "postgres":
        # Whichever driver the environment has (scripts/test-django.sh
        # installs psycopg 3 or psycopg2, as Django's backend would use).
        try:
            import psycopg

            return psycopg.connect(
                host=p["host"], port=p["port"] or 5432, user=p["user"], password=p["password"],
                dbname=dbname or "postgres", autocommit=True,
            )
        except ImportError:
            import psycopg2

        conn = psycopg2.connect(
            host=p["host"], port=p["port"] or 5432, user=p["user"], password=p["password"],
            dbname=dbname or "postgres",
        )
        conn.autocommit = True
        return conn
    if BACKEND == "mysql":
        import pymysql

        return pymysql.connect(
            host=p["host"], port=p["port"] or 3306, user=p["user"], password=p["password"] or "",
            database=dbname, autocommit=True,
        )
    raise RuntimeError(f"no server for backend {BACKEND}")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh, empty database on the current server, dropped afterwards."""
    name = f"tessera_scratch_{uuid.uuid4().hex[:12]}"
    admin = connect()
    try:
        with admin.cursor() as c:
            c.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        with admin.cursor() as c:
            if BACKEND == "postgres":
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    [name],
                )
            c.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def tables(dbname: str) -> List[str]:
    conn = connect(dbname)
    try:
        with conn.cursor() as c:
            if BACKEND == "postgres":
                c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            else:
                c.execute("SHOW TABLES")
            return sorted(row[0] for row in c.fetchall())
    finally:
        conn.close()


_SQLITE_QUERY = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(json.dumps(conn.execute(sys.argv[2], json.loads(sys.argv[3])).fetchall()))
conn.close()
"""


def sqlite_query(path: str, sql: str, params: Sequence[Any] = ()) -> List[list]:
    """Runs a query on a SQLite file from another process.

    Never from this one: Python's sqlite3 and the native module carry two
    copies of SQLite whose POSIX locks do not see each other, and closing
    Python's handle would drop the locks Tessera holds on the file."""
    out = subprocess.run(
        [sys.executable, "-c", _SQLITE_QUERY, path, sql, json.dumps(list(params))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def sqlite_tables(path: str) -> List[str]:
    return sorted(r[0] for r in sqlite_query(path, "SELECT name FROM sqlite_master WHERE type = 'table'"))
