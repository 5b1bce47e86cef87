"""Which database Tessera's Rust core connects to.

The core has its own connection pool (sqlx); it does not share Django's
connections. It connects to the database of ``SUPER_TOKENS["DATABASE_ALIAS"]``
(``"default"`` unless set), read from ``django.db.connections[alias]`` at the
moment of first use, so it follows Django's test runner and pytest-django to
the test database (``test_<NAME>``).

* ``django.db.backends.sqlite3`` (and backends whose ``vendor`` is
  ``"sqlite"``) → **a file of its own beside the project's database**:
  ``NAME`` ``/srv/app/db.sqlite3`` gives ``/srv/app/db.tessera.sqlite3``.
  Python's ``sqlite3`` module and Tessera's Rust core each carry their own
  copy of the SQLite library, and SQLite's file locks (POSIX locks, which
  belong to the process) cannot keep two copies inside one process from
  writing to the same file at the same time; sharing the file could corrupt
  it. So the two never write to the same file. ``manage.py migrate`` creates
  that file and its tables; back it up with the database.

  When the name is ``:memory:`` or an in-memory URI (``mode=memory``, what
  Django's test runner uses for SQLite by default), Tessera cannot share
  Django's in-memory database either, so it keeps its tables in **its own
  in-memory SQLite database for the life of the process**. Sessions then
  vanish when the process exits, which is what tests want.
* ``postgresql`` → ``postgres://USER:PASSWORD@HOST:PORT/NAME``. A ``HOST``
  that starts with ``/`` is a Unix-socket directory. An empty ``HOST`` means
  what it means to libpq: ``$PGHOST`` if set, else the server's socket in
  ``/var/run/postgresql``, ``/tmp`` or ``/private/tmp``, else ``localhost``.
  ``OPTIONS`` ``sslmode``, ``sslrootcert``, ``sslcert`` and ``sslkey`` are
  passed on.
* ``mysql`` (MySQL or MariaDB) → ``mysql://USER:PASSWORD@HOST:PORT/NAME``. A
  ``HOST`` starting with ``/`` or ``OPTIONS["unix_socket"]`` is a socket;
  an empty ``HOST`` means ``localhost``.

``SUPER_TOKENS["DATABASE_URL"]`` overrides all of this with a URL of your own
(it then does not follow the test runner).
"""

import os
from typing import Any, Dict, List, Mapping, Tuple
from urllib.parse import quote, urlencode

from .exceptions import SuperTokensGeneralException

__all__ = ["MEMORY_URL", "url_for_alias", "url_for_settings", "tessera_sqlite_path", "describe"]

#: Tessera's own in-memory SQLite database (one per process).
MEMORY_URL = "sqlite::memory:"

_PG_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _userinfo(settings_dict: Mapping[str, Any]) -> str:
    user = _text(settings_dict.get("USER"))
    password = _text(settings_dict.get("PASSWORD"))
    if not user and not password:
        return ""
    info = quote(user, safe="")
    if password:
        info += ":" + quote(password, safe="")
    return info + "@"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _is_memory(name: str) -> bool:
    return name in ("", ":memory:") or "mode=memory" in name


def _sqlite(settings_dict: Mapping[str, Any]) -> str:
    name = os.fspath(settings_dict.get("NAME") or "")
    if _is_memory(name):
        return MEMORY_URL
    if name.startswith("file:"):
        # A SQLite URI filename: keep the path, drop the parameters.
        name = name[len("file:"):].split("?", 1)[0]
    # sqlx percent-decodes the path, so '%', '?' and '#' survive quoting.
    return "sqlite://" + quote(tessera_sqlite_path(os.path.abspath(name)), safe="/")


def tessera_sqlite_path(django_path: str) -> str:
    """The file Tessera uses beside a Django SQLite database file:
    ``db.sqlite3`` → ``db.tessera.sqlite3`` (``db`` → ``db.tessera.sqlite3``)."""
    root, ext = os.path.splitext(django_path)
    return f"{root}.tessera{ext or '.sqlite3'}"


_PG_SOCKET_DIRS = ("/var/run/postgresql", "/tmp", "/private/tmp")


def _pg_default_host(port: str) -> str:
    env = os.environ.get("PGHOST")
    if env:
        return env
    for directory in _PG_SOCKET_DIRS:
        if os.path.exists(os.path.join(directory, f".s.PGSQL.{port or 5432}")):
            return directory
    return "localhost"


def _postgres(settings_dict: Mapping[str, Any]) -> str:
    host = _text(settings_dict.get("HOST"))
    port = _text(settings_dict.get("PORT"))
    if not host:
        host = _pg_default_host(port)
    name = _text(settings_dict.get("NAME")) or "postgres"
    query: List[Tuple[str, str]] = []
    if host.startswith("/"):
        # A socket directory; the URL still needs a host name.
        query.append(("host", host))
        host = "localhost"
    netloc = _userinfo(settings_dict) + _host(host) + (f":{port}" if port else "")
    options: Dict[str, Any] = settings_dict.get("OPTIONS") or {}
    for key in _PG_OPTIONS:
        if options.get(key):
            query.append((key, str(options[key])))
    url = f"postgres://{netloc}/{quote(name, safe='')}"
    return url + ("?" + urlencode(query) if query else "")


def _mysql(settings_dict: Mapping[str, Any]) -> str:
    host = _text(settings_dict.get("HOST"))
    port = _text(settings_dict.get("PORT"))
    name = _text(settings_dict.get("NAME"))
    options: Dict[str, Any] = settings_dict.get("OPTIONS") or {}
    query: List[Tuple[str, str]] = []
    socket = options.get("unix_socket")
    if host.startswith("/"):
        socket, host = host, ""
    if socket:
        query.append(("socket", str(socket)))
    netloc = _userinfo(settings_dict) + _host(host or "localhost") + (f":{port}" if port else "")
    url = f"mysql://{netloc}/{quote(name, safe='')}"
    return url + ("?" + urlencode(query) if query else "")


def url_for_settings(vendor: str, settings_dict: Mapping[str, Any]) -> str:
    """The sqlx URL for a Django database of ``vendor`` (``connection.vendor``)."""
    if vendor == "sqlite":
        return _sqlite(settings_dict)
    if vendor == "postgresql":
        return _postgres(settings_dict)
    if vendor == "mysql":
        return _mysql(settings_dict)
    raise SuperTokensGeneralException(
        f"Tessera supports SQLite, PostgreSQL and MySQL/MariaDB databases, not {vendor!r}",
        kind="invalid_argument",
    )


def url_for_alias(alias: str) -> str:
    """The sqlx URL of Django's database ``alias``, as it is now (the test
    database while tests run)."""
    from django.db import connections

    try:
        connection = connections[alias]
    except Exception as e:  # ConnectionDoesNotExist, ImproperlyConfigured
        raise SuperTokensGeneralException(
            f"SUPER_TOKENS: DATABASE_ALIAS {alias!r} is not in DATABASES",
            kind="invalid_argument",
        ) from e
    return url_for_settings(connection.vendor, connection.settings_dict)


def describe(url: str) -> str:
    """A URL with its password replaced, for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    userinfo, _, tail = rest.partition("@")
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in userinfo else ''}@{tail}"
