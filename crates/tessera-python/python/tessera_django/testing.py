"""Test helpers.

``frozen_clock()`` replaces Tessera's clock with one that only moves when
told to, so tests can let tokens expire without sleeping (the reference library's lower
bound on ``ACCESS_TOKEN_VALIDITY`` is 10 seconds)::

    from tessera_django.testing import frozen_clock

    def test_expiry(client):
        with frozen_clock() as clock:
            client.post("/login")
            clock.advance(3601)            # one hour later
            assert client.post("/api").status_code == 401

The clock drives everything Tessera decides about time: token expiry, cookie
``Expires`` dates, session expiry in the database and key rotation. It is
process-wide (all threads see it) and it is a test tool only: it is not a
setting and cannot be switched on from ``settings.py``.
"""

import contextlib
import datetime
from typing import Iterator, Optional, Union

from . import _native, _state

__all__ = ["FrozenClock", "frozen_clock", "create_tables", "close_connections"]


class FrozenClock:
    """A manual clock installed by :func:`frozen_clock`."""

    def __init__(self, native: _native.ManualClock) -> None:
        self._native = native

    def advance(self, seconds: Union[int, float, datetime.timedelta]) -> None:
        """Moves the clock forward (backward for a negative value)."""
        if isinstance(seconds, datetime.timedelta):
            seconds = seconds.total_seconds()
        self._native.advance(float(seconds))

    def now(self) -> datetime.datetime:
        """The time shown, as an aware UTC datetime."""
        return datetime.datetime.fromtimestamp(self._native.now_ms / 1000, tz=datetime.timezone.utc)

    @property
    def now_ms(self) -> int:
        """The time shown, in milliseconds since the epoch."""
        return self._native.now_ms


@contextlib.contextmanager
def frozen_clock(start: Optional[datetime.datetime] = None) -> Iterator[FrozenClock]:
    """Installs a manual clock showing ``start`` (default: now) for the
    duration of the ``with`` block, then restores the previous clock.
    Tessera's manager is rebuilt on entry and exit."""
    native = _native.ManualClock(None if start is None else int(start.timestamp() * 1000))
    previous = _state.set_clock(native)
    try:
        yield FrozenClock(native)
    finally:
        _state.set_clock(previous)


def close_connections() -> int:
    """Closes Tessera's connection pools (Tessera reconnects on next use).
    Django's test runner already does this before dropping a test database."""
    return _state.close_connections()


def create_tables(using: str = "default") -> bool:
    """Creates Tessera's tables in the Django database ``using`` if it is the
    one Tessera uses; returns whether it did. Only needed when the test
    database is built without migrations (pytest-django's
    ``--no-migrations``, ``TEST = {"MIGRATE": False}``): Tessera's tables
    come from its migration."""
    from django.db import connections

    return _state.migrate_connection(connections[using])
