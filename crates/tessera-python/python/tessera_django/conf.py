"""``settings.SUPER_TOKENS``: the keys, units and defaults of
``supertokens-jwt-ref`` 2.0 (the reference library), plus keys for what it
lacks.

============================================  =============  ==============================================
key                                           default        notes
============================================  =============  ==============================================
``ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC``       ``True``       rotate the signing key every interval
``ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL``  ``24``         hours, any positive number; recommended
                                                             1 to 720 (outside: warning W002)
``ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION``     ``None``       your key: a callable (or dotted path) returning
                                                             ``str``/``bytes``, called on every sign/verify
``ACCESS_TOKEN_VALIDITY``                     ``3600``       seconds, any positive number; recommended
                                                             10 to 86 400 000 (outside: warning W002)
``ACCESS_TOKEN_ENABLE_BLACKLISTING``          ``False``      check the database on every ``get_session``
``ACCESS_TOKEN_PATH``                         ``"/"``        path of ``sAccessToken`` and ``sIdRefreshToken``
``ANTI_CSRF_ENABLE``                          ``True``
``REFRESH_TOKEN_VALIDITY``                    ``2400``       hours, any positive number; recommended
                                                             1 to 8760 and at least the access-token
                                                             validity (outside: warning W002)
``REFRESH_TOKEN_PATH``                        ``"refresh/"`` the refresh API's path (``/`` is prepended);
                                                             warning W003 if no view answers there
``COOKIE_DOMAIN``                             ``"localhost"`` ``None`` for host-only cookies (warning W004
                                                             if ``ALLOWED_HOSTS`` admits ``127.0.0.1``)
``COOKIE_SECURE``                             ``True``       ``False`` only for plain-HTTP development
``COOKIE_SAME_SITE``                          ``"Lax"``      new; ``"Strict"`` or ``"None"`` (needs Secure)
``COOKIE_NAME_PREFIX``                        ``None``       new; ``"__Secure-"`` or ``"__Host-"``: cookie names
                                                             the browser protects (``__Host-``: no domain,
                                                             access path ``"/"``; both need Secure)
``SESSION_EXPIRED_STATUS_CODE``               ``401``        new; 4xx; the front end's SDK must use the
                                                             same (the reference library's examples
                                                             use 440)
``REVOKE_SESSION_ON_TOKEN_THEFT``             ``True``       new; the reference library leaves revocation to you
``ACCEPT_PREVIOUS_SIGNING_KEY``               ``False``      new; keep accepting tokens signed with the
                                                             previous key until they expire
``DATABASE_ALIAS``                            ``"default"``  new; the Django database that holds the tables
``DATABASE_URL``                              ``None``       new; a sqlx URL used instead of the alias
``DATABASE_POOL_SIZE``                        ``10``         new; connections in Tessera's own pool
``DATABASE_ACQUIRE_TIMEOUT``                  ``5``          new; seconds a call waits for a connection
                                                             before ``SuperTokensGeneralException``
                                                             (also how long a call takes to fail while
                                                             the database is down)
``REFERENCE_PROFILE``                         ``True``       new; serve supertokens-website 4.2.0 (the
                                                             reference library's cookies and headers)
``CURRENT_SDK``                               ``None``       new; also serve the current
                                                             supertokens-website SDK (20.x) and Bearer
                                                             clients: a dict with ``API_BASE_PATH``
                                                             (``"/auth"``), ``COOKIE`` (``True``: its
                                                             cookie mode) and ``HEADER`` (``True``:
                                                             header mode, ``Authorization: Bearer``);
                                                             route ``tessera_django.urls.current_sdk_urlpatterns()``
``ACCESS_TOKEN_ALGORITHM``                    ``"HS256"``    new; ``"EdDSA"``, ``"ES256"`` or ``"RS256"``: access
                                                             tokens signed with a key pair kept in the
                                                             database, public keys served by
                                                             ``tessera_django.views.jwks`` for other services
``ACCESS_TOKEN_ISSUER``                       ``"tessera"``  new; the ``iss`` claim (key-pair algorithms only)
``ACCESS_TOKEN_AUDIENCE``                     ``None``       new; the ``aud`` claim (key-pair algorithms only)
``REFRESH_TOKEN_GRACE_PERIOD``                ``0``          new; seconds (0 to 300) after a refresh during which
                                                             the replaced refresh token (or a sibling) is
                                                             answered with fresh tokens instead of theft:
                                                             for clients without a cross-tab lock. 0: off,
                                                             the reference library's behaviour
``IDLE_TIMEOUT``                              ``None``       new; seconds: a session whose tokens were not
                                                             rotated for this long ends at its next refresh
                                                             (``SuperTokensUnauthorizedException("idle_timeout")``);
                                                             longer than ``ACCESS_TOKEN_VALIDITY``
``ABSOLUTE_LIFETIME``                         ``None``       new; seconds: a session older than this ends at
                                                             its next refresh, whatever its refreshes
                                                             (``SuperTokensUnauthorizedException("absolute_lifetime")``)
``RECORD_CLIENT_ADDRESS``                     ``False``      new; ``True``: a session created with
                                                             ``create_new_session(..., request=request)``
                                                             keeps ``request.META["REMOTE_ADDR"]``
                                                             (listed by ``get_all_sessions_for_user``).
                                                             Personal data: off unless you need it and
                                                             say so to your users. Behind a proxy,
                                                             ``REMOTE_ADDR`` is the proxy's: set it to
                                                             the client's in a middleware of yours
============================================  =============  ==============================================

The validities and the key interval accept any positive number, as the
reference library does (zero, negative and non-numbers are refused; ``bool``
is not a number); values above 1000 years are used as 1000 years. Values
outside the recommended ranges are reported by ``manage.py check`` as
warnings (``tessera_django.W002``), not errors.

Changes take effect when Django's ``setting_changed`` signal fires (so
``override_settings`` works in tests): the next call builds a new manager.
"""

import difflib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from django.conf import settings
from django.utils.module_loading import import_string

from .exceptions import SuperTokensGeneralException

__all__ = [
    "DEFAULTS",
    "REFERENCE_DEFAULTS",
    "EXTRA_DEFAULTS",
    "CURRENT_SDK_DEFAULTS",
    "TesseraSettings",
    "load",
    "current_sdk_paths",
]

#: The reference library's settings and defaults (supertokens_jwt_ref), unchanged.
REFERENCE_DEFAULTS: Dict[str, Any] = {
    "ACCESS_TOKEN_SIGNING_KEY_IS_DYNAMIC": True,
    "ACCESS_TOKEN_SIGNING_KEY_UPDATE_INTERVAL": 24,
    "ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION": None,
    "ACCESS_TOKEN_VALIDITY": 3600,
    "ACCESS_TOKEN_ENABLE_BLACKLISTING": False,
    "ACCESS_TOKEN_PATH": "/",
    "ANTI_CSRF_ENABLE": True,
    "REFRESH_TOKEN_VALIDITY": 2400,
    "REFRESH_TOKEN_PATH": "refresh/",
    "COOKIE_DOMAIN": "localhost",
    "COOKIE_SECURE": True,
}

#: Keys Tessera adds for what the reference library does not configure.
EXTRA_DEFAULTS: Dict[str, Any] = {
    "COOKIE_SAME_SITE": "Lax",
    "COOKIE_NAME_PREFIX": None,
    "SESSION_EXPIRED_STATUS_CODE": 401,
    "REVOKE_SESSION_ON_TOKEN_THEFT": True,
    "ACCEPT_PREVIOUS_SIGNING_KEY": False,
    "DATABASE_ALIAS": "default",
    "DATABASE_URL": None,
    "DATABASE_POOL_SIZE": 10,
    "DATABASE_ACQUIRE_TIMEOUT": 5,
    "REFERENCE_PROFILE": True,
    "CURRENT_SDK": None,
    "ACCESS_TOKEN_ALGORITHM": "HS256",
    "ACCESS_TOKEN_ISSUER": "tessera",
    "ACCESS_TOKEN_AUDIENCE": None,
    "REFRESH_TOKEN_GRACE_PERIOD": 0,
    "IDLE_TIMEOUT": None,
    "ABSOLUTE_LIFETIME": None,
    "RECORD_CLIENT_ADDRESS": False,
}

#: The keys of ``CURRENT_SDK`` and their defaults (the SDK's own default
#: ``apiBasePath`` is ``/auth``).
CURRENT_SDK_DEFAULTS: Dict[str, Any] = {
    "API_BASE_PATH": "/auth",
    "COOKIE": True,
    "HEADER": True,
}

DEFAULTS: Dict[str, Any] = {**REFERENCE_DEFAULTS, **EXTRA_DEFAULTS}

# Keys read here, in Python; every other key goes to the Rust core, which
# validates types (and refuses zero or negative durations).
_PYTHON_KEYS = {
    "ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION",
    "DATABASE_ALIAS",
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "DATABASE_ACQUIRE_TIMEOUT",
}


@dataclass(frozen=True)
class TesseraSettings:
    """``SUPER_TOKENS`` merged with the defaults and checked."""

    #: What the Rust core reads (the reference library's names and units).
    core: Dict[str, Any]
    key_function: Optional[Callable[[], Any]]
    database_alias: str
    database_url: Optional[str]
    pool_size: int
    acquire_timeout: float

    @property
    def session_expired_status(self) -> int:
        return int(self.core["SESSION_EXPIRED_STATUS_CODE"])


def _fail(message: str) -> SuperTokensGeneralException:
    return SuperTokensGeneralException("SUPER_TOKENS: " + message, kind="invalid_argument")


def load() -> TesseraSettings:
    """Reads ``settings.SUPER_TOKENS``. Raises ``SuperTokensGeneralException``
    naming the key to fix (unknown keys included: a typo would otherwise
    silently keep a default)."""
    user = getattr(settings, "SUPER_TOKENS", None)
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise _fail(f"must be a dict, not {type(user).__name__}")
    _refuse_unknown_keys(user, DEFAULTS, "")
    merged = {**DEFAULTS, **user}

    key_function = merged["ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION"]
    if isinstance(key_function, str):
        try:
            key_function = import_string(key_function)
        except ImportError as e:
            raise _fail(f"ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION: cannot import {key_function!r}") from e
    if key_function is not None and not callable(key_function):
        raise _fail("ACCESS_TOKEN_SIGNING_KEY_GET_FUNCTION must be a callable, a dotted path or None")

    alias = merged["DATABASE_ALIAS"]
    if not isinstance(alias, str) or not alias:
        raise _fail("DATABASE_ALIAS must be the name of an entry of DATABASES")
    url = merged["DATABASE_URL"]
    if url is not None and (not isinstance(url, str) or ":" not in url):
        raise _fail("DATABASE_URL must be None or a URL such as postgres://user@host/db")
    pool_size = merged["DATABASE_POOL_SIZE"]
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or not 1 <= pool_size <= 1000:
        raise _fail("DATABASE_POOL_SIZE must be an int between 1 and 1000")

    timeout = merged["DATABASE_ACQUIRE_TIMEOUT"]
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise _fail("DATABASE_ACQUIRE_TIMEOUT must be a number of seconds between 0 and 3600")

    merged["CURRENT_SDK"] = _current_sdk(merged["CURRENT_SDK"])

    core = {k: v for k, v in merged.items() if k not in _PYTHON_KEYS}
    return TesseraSettings(
        core=core,
        key_function=key_function,
        database_alias=alias,
        database_url=url,
        pool_size=pool_size,
        acquire_timeout=float(timeout),
    )


def _refuse_unknown_keys(given: Dict[Any, Any], known: Dict[str, Any], where: str) -> None:
    """Raises for the first key of ``given`` not in ``known``, with a "did
    you mean" hint: a typo would otherwise silently keep a default."""
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _fail(f"unknown key {key!r}{where}{hint}")


def _current_sdk(value: Any) -> Optional[Dict[str, Any]]:
    """``CURRENT_SDK`` with its defaults filled in (``None`` stays ``None``).
    Unknown keys are refused like unknown top-level keys; the types are
    checked by the Rust core."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail(f"CURRENT_SDK must be None or a dict, not {type(value).__name__}")
    _refuse_unknown_keys(value, CURRENT_SDK_DEFAULTS, " in CURRENT_SDK")
    return {**CURRENT_SDK_DEFAULTS, **value}


def current_sdk_paths(core: Dict[str, Any]) -> Optional[Tuple[str, str]]:
    """``(refresh path, sign-out path)`` of the current SDK's API for the
    checked settings ``core`` (``TesseraSettings.core``), or ``None`` when
    ``CURRENT_SDK`` is off: ``<API_BASE_PATH>/session/refresh`` and
    ``<API_BASE_PATH>/signout``, with a leading ``/`` and no trailing one,
    as the Rust core derives them (the manager's ``current_sdk_paths``)."""
    sdk = core.get("CURRENT_SDK")
    if not sdk:
        return None
    base = str(sdk["API_BASE_PATH"])
    base = (base if base.startswith("/") else "/" + base).rstrip("/")
    return (base + "/session/refresh", base + "/signout")
