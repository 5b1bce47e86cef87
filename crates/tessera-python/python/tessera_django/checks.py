"""System checks (``manage.py check``): bad ``SUPER_TOKENS`` values are
reported at startup instead of on the first request.

=====================  ==========================================================
id                     what
=====================  ==========================================================
``E001``               a ``SUPER_TOKENS`` value Tessera cannot use
``E002``, ``E003``     the database of ``DATABASE_ALIAS`` is missing or unusable
``W001``               the DRF class without the middleware
``W002``               a validity or the key interval outside the recommended range
                       (accepted, as the reference library accepts it)
``W003``               nothing in the URLconf answers at ``REFRESH_TOKEN_PATH``
``W004``               ``COOKIE_DOMAIN = "localhost"`` while the site is reachable
                       under another host name (``127.0.0.1``)
``W005``               ``CURRENT_SDK`` is on but nothing in the URLconf answers at its
                       refresh path (``<API_BASE_PATH>/session/refresh``)
=====================  ==========================================================
"""

from typing import Any, List, Optional

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from . import _native, conf, db
from .exceptions import SuperTokensGeneralException

AUTH_CLASS = "tessera_django.authentication.SuperTokensAuthentication"
MIDDLEWARE = "tessera_django.middleware.SuperTokensMiddleware"


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> List[Any]:
    errors: List[Any] = []
    try:
        s = conf.load()
        _native.validate_config(s.core, key_function=s.key_function)
    except SuperTokensGeneralException as e:
        return [Error(str(e), hint="Fix settings.SUPER_TOKENS.", id="tessera_django.E001")]
    if s.database_url is None:
        if s.database_alias not in settings.DATABASES:
            errors.append(
                Error(
                    f"SUPER_TOKENS: DATABASE_ALIAS {s.database_alias!r} is not in DATABASES.",
                    id="tessera_django.E002",
                )
            )
        else:
            try:
                db.url_for_alias(s.database_alias)
            except SuperTokensGeneralException as e:
                errors.append(Error(str(e), id="tessera_django.E003"))
    for message in _native.config_warnings(s.core, key_function=s.key_function):
        errors.append(
            Warning(
                message,
                hint="supertokens-jwt-ref 2.0 accepts any positive value and so does Tessera; "
                "values outside the range are usually a unit mistake (hours vs seconds) or "
                "meant for tests only.",
                id="tessera_django.W002",
            )
        )
    errors.extend(_localhost_domain_warnings(s.core))
    drf = getattr(settings, "REST_FRAMEWORK", {}) or {}
    if AUTH_CLASS in drf.get("DEFAULT_AUTHENTICATION_CLASSES", ()) and MIDDLEWARE not in getattr(
        settings, "MIDDLEWARE", ()
    ):
        errors.append(
            Warning(
                f"{AUTH_CLASS} is used without {MIDDLEWARE}: cookies set while "
                "authenticating (a new access token after a refresh, cleared cookies) are lost.",
                hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE.",
                id="tessera_django.W001",
            )
        )
    return errors


#: Host names whose cookies ``Domain=localhost`` covers (and Django's test client).
_LOCALHOST_NAMES = {"localhost", ".localhost", "testserver"}


def _localhost_domain_warnings(core: Any) -> List[Any]:
    """``COOKIE_DOMAIN = "localhost"`` (the reference library's default) while
    ``ALLOWED_HOSTS`` lets the site be opened under another name: a browser at
    ``http://127.0.0.1:8000/`` (what ``runserver`` prints) rejects every
    session cookie, and sign-in answers 200 without storing any."""
    if core.get("COOKIE_DOMAIN") != "localhost":
        return []
    hosts = list(getattr(settings, "ALLOWED_HOSTS", []) or [])
    if not hosts and getattr(settings, "DEBUG", False):
        hosts = ["127.0.0.1", "[::1]"]  # what Django allows then
    others = [h for h in hosts if h not in _LOCALHOST_NAMES and not h.endswith(".localhost")]
    if not others:
        return []
    return [
        Warning(
            'SUPER_TOKENS: COOKIE_DOMAIN is "localhost" but the site can be opened as '
            f"{', '.join(map(repr, others))} (ALLOWED_HOSTS): browsers store the session "
            "cookies only when the page is opened at http://localhost..., so signing in "
            "at http://127.0.0.1:8000/ answers 200 and stores no cookies.",
            hint='Set SUPER_TOKENS["COOKIE_DOMAIN"] = None (host-only cookies) or your real '
            "domain, or open the site at http://localhost:8000/.",
            id="tessera_django.W004",
        )
    ]


def _refresh_path(core: Any) -> Optional[str]:
    path = core.get("REFRESH_TOKEN_PATH")
    if not isinstance(path, str):
        return None
    # Tessera serves (and scopes the refresh cookie to) the path with a
    # leading "/".
    return path if path.startswith("/") else "/" + path


@register(Tags.urls)
def check_refresh_path(app_configs: Any = None, **kwargs: Any) -> List[Any]:
    """``REFRESH_TOKEN_PATH`` is the refresh cookie's ``Path``: the browser
    sends ``sRefreshToken`` only to URLs under it. If no view answers there,
    the refresh view (wherever it is routed) never receives the cookie."""
    try:
        s = conf.load()
    except SuperTokensGeneralException:
        return []  # reported by check_settings (E001)
    if s.core.get("REFERENCE_PROFILE") is False:
        return []  # no 4.2.0 client calls REFRESH_TOKEN_PATH
    path = _refresh_path(s.core)
    if path is None or not _unrouted(path):
        return []
    return [
        Warning(
            f"SUPER_TOKENS: REFRESH_TOKEN_PATH is {s.core['REFRESH_TOKEN_PATH']!r} but nothing "
            f"in the URLconf answers at {path!r}. The refresh cookie is sent only to that "
            "path, so a refresh view routed elsewhere never receives it and every refresh "
            "fails with Unauthorized.",
            hint="Route the view that calls supertokens.refresh_session at that path, or set "
            "REFRESH_TOKEN_PATH to the path the view is routed at (e.g. \"api/refresh/\" for "
            "path(\"api/refresh/\", refresh)).",
            id="tessera_django.W003",
        )
    ]


@register(Tags.urls)
def check_current_sdk_paths(app_configs: Any = None, **kwargs: Any) -> List[Any]:
    """With ``CURRENT_SDK`` the SDK calls ``<API_BASE_PATH>/session/refresh``
    whenever an access token expires; if nothing answers there every
    refresh fails and the user is signed out."""
    try:
        s = conf.load()
    except SuperTokensGeneralException:
        return []  # reported by check_settings (E001)
    paths = conf.current_sdk_paths(s.core)
    if paths is None or not _unrouted(paths[0]):
        return []
    return [
        Warning(
            f"SUPER_TOKENS: CURRENT_SDK is on but nothing in the URLconf answers at "
            f"{paths[0]!r}, where the SDK refreshes its session; every refresh would fail "
            "and sign the user out.",
            hint="Add *tessera_django.urls.current_sdk_urlpatterns() to urlpatterns, or set "
            "CURRENT_SDK[\"API_BASE_PATH\"] to the SDK's apiBasePath.",
            id="tessera_django.W005",
        )
    ]


def _unrouted(path: str) -> bool:
    """Whether nothing in the URLconf resolves ``path`` (a warning is due).
    False without a URLconf, or when it is broken (Django's own checks
    report that)."""
    from django.urls import Resolver404, get_script_prefix, resolve

    if not getattr(settings, "ROOT_URLCONF", None):
        return False
    candidates = [path]
    # Under a script prefix (FORCE_SCRIPT_NAME, a sub-path deployment) the
    # cookie path includes the prefix and the URLconf does not.
    prefix = getattr(settings, "FORCE_SCRIPT_NAME", None) or get_script_prefix()
    if prefix and prefix != "/" and path.startswith(prefix.rstrip("/") + "/"):
        candidates.append(path[len(prefix.rstrip("/")) :])
    for candidate in candidates:
        try:
            resolve(candidate)
            return False
        except Resolver404:
            continue
        except Exception:
            return False  # a broken URLconf is reported by Django's own checks
    return True
