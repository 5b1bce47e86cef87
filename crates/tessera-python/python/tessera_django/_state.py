"""The process-wide Tessera manager: built lazily, rebuilt when settings change.

The manager is created on first use, not at import or ``AppConfig.ready()``:
Django's test runner swaps in the test database's name after settings are
loaded, and the manager must connect to the database as it is when sessions
are first used. It is rebuilt when

* Django's ``setting_changed`` signal fires for ``SUPER_TOKENS`` or
  ``DATABASES`` (``override_settings``, ``self.settings()`` in tests);
* the database alias's ``NAME`` differs from the one it was built for (the
  test runner creates and destroys test databases without a signal);
* a test clock is installed or removed (:mod:`tessera_django.testing`);
* its connection pool was closed (:func:`close_connections`).

Rebuilding is cheap: connection pools are cached per database URL in the
Rust module and shared. Before Django's test runner drops a test database,
the pools are closed (PostgreSQL refuses to drop a database that has
connections).
"""

import os
import threading
from typing import Any, Optional, Tuple

from django.core.signals import setting_changed
from django.dispatch import receiver

from . import _native, conf, db
from .exceptions import SuperTokensGeneralException

__all__ = ["get", "aget", "ready", "peek", "reset", "settings", "set_clock", "migrate_connection", "close_connections"]

_lock = threading.RLock()
_manager: Optional[Tuple[Any, Any]] = None  # (key, Manager)
# What `get()` checks on every call, without re-reading settings: the
# alias's settings dict (None with DATABASE_URL), the NAME it had when the
# manager was built, and the manager. Set by `_build`, cleared by `reset`.
_fast: Optional[Tuple[Any, Any, Any]] = None
_settings: Optional[conf.TesseraSettings] = None
_clock: Optional[_native.ManualClock] = None


def settings() -> conf.TesseraSettings:
    """The current ``SUPER_TOKENS`` settings, merged and checked."""
    global _settings
    s = _settings
    if s is None:
        with _lock:
            s = _settings = conf.load()
    return s


def _key(s: conf.TesseraSettings) -> Any:
    """What the manager depends on besides settings: the database's name."""
    if s.database_url is not None:
        return s.database_url
    from django.db import connections

    # `connections.settings` holds the very dicts whose NAME the test runner
    # rewrites, and reading it needs no thread-local connection.
    try:
        return connections.settings[s.database_alias].get("NAME")
    except Exception:
        return None


def get() -> _native.Manager:
    """The manager, built on first use.

    The hot path of every session call: one dict lookup (has the test
    runner renamed the database?) and one attribute read (was the pool
    closed?). Settings are re-read only after ``reset()``, which Django's
    ``setting_changed`` signal triggers.
    """
    fast = _fast
    if fast is not None:
        source, name, manager = fast
        if (source is None or source.get("NAME") == name) and not manager.is_closed:
            return manager
    return _get_slow()


def ready() -> Optional[_native.Manager]:
    """The manager if ``get()`` would return it without building one (no
    database access), else ``None``."""
    fast = _fast
    if fast is not None:
        source, name, manager = fast
        if (source is None or source.get("NAME") == name) and not manager.is_closed:
            return manager
    return None


async def aget() -> _native.Manager:
    """``get()`` for async code. Building a manager connects to the
    database and loads the keys (blocking calls): that happens once per
    process and settings change, in a worker thread of asgiref's
    ``sync_to_async``, never on the event loop. Every later call is the
    fast path of ``get()``, which does not block."""
    manager = ready()
    if manager is not None:
        return manager
    from asgiref.sync import sync_to_async

    return await sync_to_async(_get_slow, thread_sensitive=False)()


def peek() -> Optional[_native.Manager]:
    """The manager if one has been built (and not reset), without building
    one: for code that only needs it if Tessera has been used at all."""
    fast = _fast
    return None if fast is None else fast[2]


def _source(s: conf.TesseraSettings) -> Any:
    """The settings dict whose NAME the manager depends on (None with
    ``DATABASE_URL``)."""
    if s.database_url is not None:
        return None
    from django.db import connections

    try:
        return connections.settings[s.database_alias]
    except Exception:
        return None


def _get_slow() -> _native.Manager:
    s = settings()
    key = _key(s)
    with _lock:
        return _build(s, key)


def _build(s: conf.TesseraSettings, key: Any) -> _native.Manager:
    global _manager, _fast
    if _manager is not None and _manager[0] == key and not _manager[1].is_closed:
        _fast = (_source(s), key, _manager[1])
        return _manager[1]
    url = s.database_url or db.url_for_alias(s.database_alias)
    try:
        manager = _native.Manager.connect(
            url,
            s.core,
            pool_size=s.pool_size,
            acquire_timeout=s.acquire_timeout,
            key_function=s.key_function,
            clock=_clock,
        )
    except SuperTokensGeneralException as e:
        where = db.describe(url) if s.database_url else f"database alias {s.database_alias!r}"
        hint = ""
        if "tessera_keys" in str(e):
            hint = " (create the tables with `manage.py migrate`)"
        raise SuperTokensGeneralException(
            f"Tessera could not start on {where}{hint}: {e}", kind=e.kind
        ) from e
    _manager = (key, manager)
    _fast = (_source(s), key, manager)
    return manager


def reset() -> None:
    """Forgets the manager and the settings; the next call rebuilds them."""
    global _manager, _settings, _fast
    with _lock:
        _fast = None
        _manager = None
        _settings = None


def set_clock(clock: Optional[_native.ManualClock]) -> Optional[_native.ManualClock]:
    """Installs a test clock (``None``: the system clock); returns the previous one."""
    global _clock
    with _lock:
        previous, _clock = _clock, clock
        reset()
    return previous


def migrate_connection(connection: Any) -> bool:
    """Creates Tessera's tables in the database of a Django ``connection`` if
    it is the one Tessera uses. Returns whether it did."""
    s = settings()
    if connection.alias != s.database_alias:
        return False
    url = s.database_url or db.url_for_settings(connection.vendor, connection.settings_dict)
    _native.migrate(url, pool_size=s.pool_size, acquire_timeout=s.acquire_timeout)
    return True


def close_connections() -> int:
    """Closes Tessera's connection pools (not its in-memory database) and
    forgets the manager. Returns how many pools were closed."""
    with _lock:
        reset()
        return _native.close_stores()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("SUPER_TOKENS", "DATABASES"):
        reset()


_test_db_hook_installed = False


def _sqlite_test_companion(
    connection: Any,
    old_database_name: Any = None,
    verbosity: Any = 1,
    keepdb: bool = False,
    suffix: Any = None,
) -> Optional[str]:
    """Tessera's file beside a file-based SQLite test database about to be
    destroyed, if any."""
    if keepdb or connection.vendor != "sqlite":
        return None
    if suffix is None:
        name = connection.settings_dict.get("NAME")
    else:
        name = connection.creation.get_test_db_clone_settings(suffix).get("NAME")
    url = db.url_for_settings("sqlite", {"NAME": name})
    if url == db.MEMORY_URL:
        return None
    return db.tessera_sqlite_path(os.path.abspath(os.fspath(name)))


def install_test_database_hook() -> None:
    """Closes Tessera's pools before Django drops a test database.

    Django's ``destroy_test_db`` runs ``DROP DATABASE``, which PostgreSQL
    refuses while other connections to it are open; Tessera's pool holds
    some. A file-based SQLite test database has Tessera's file beside it
    (see :mod:`tessera_django.db`), removed with it. Wraps
    ``BaseDatabaseCreation.destroy_test_db`` once.
    """
    global _test_db_hook_installed
    with _lock:
        if _test_db_hook_installed:
            return
        from django.db.backends.base.creation import BaseDatabaseCreation

        original = BaseDatabaseCreation.destroy_test_db

        def destroy_test_db(self: Any, *args: Any, **kwargs: Any) -> Any:
            close_connections()
            companion = _sqlite_test_companion(self.connection, *args, **kwargs)
            result = original(self, *args, **kwargs)
            if companion:
                for path in (companion, companion + "-wal", companion + "-shm"):
                    try:
                        os.remove(path)
                    except OSError:
                        pass
            return result

        setattr(destroy_test_db, "__wrapped__", original)
        setattr(BaseDatabaseCreation, "destroy_test_db", destroy_test_db)
        _test_db_hook_installed = True
