"""The reference library's API: ``from tessera_django import supertokens``.

Every function has the reference library's name, signature, return value, cookie and
header effects and exceptions (see the reference library's API reference and
``docs/PROTOCOL.md``). The work is done by Tessera's Rust core, with the GIL
released while it waits on the database. The request and the response are
read and written by the native module itself (interned keys, no Python-level
helper in between): these functions are the whole Python-level cost of a
call.

``request`` is a ``django.http.HttpRequest`` (or DRF's ``Request``): the
cookies ``sIdRefreshToken``, ``sAccessToken`` and ``sRefreshToken`` are read
from ``request.COOKIES`` and the ``anti-csrf`` header from
``request.META["HTTP_ANTI_CSRF"]``. ``response`` is a
``django.http.HttpResponse`` or a subclass (DRF's ``Response`` included):
cookies are set with ``response.set_cookie`` and headers with
``response[name] = value``; ``Access-Control-*`` list headers are appended
to, comma-separated. An empty cookie value counts as no cookie (that is what
a cleared cookie looks like to clients that ignore its expiry).
"""

import json
from typing import Any, Dict, List, Optional, Union

from . import _native, _state
from ._json import dumps
from ._response import writer_for
from .exceptions import SuperTokensGeneralException
from .session import Session

__all__ = [
    "create_new_session",
    "get_session",
    "refresh_session",
    "get_session_info",
    "update_session_info",
    "revoke_session",
    "revoke_all_sessions_for_user",
    "get_all_session_handles_for_user",
    "get_all_sessions_for_user",
    "set_headers_for_options_api",
    "acreate_new_session",
    "aget_session",
    "arefresh_session",
    "aget_session_info",
    "aupdate_session_info",
    "arevoke_session",
    "arevoke_all_sessions_for_user",
    "aget_all_session_handles_for_user",
    "aget_all_sessions_for_user",
]

def _handle(session_handle: Any) -> str:
    if not isinstance(session_handle, str):
        raise SuperTokensGeneralException(
            f"session_handle must be a str, not {type(session_handle).__name__}",
            kind="invalid_argument",
        )
    return session_handle


def _label(device_label: Any) -> Optional[str]:
    if device_label is not None and not isinstance(device_label, str):
        raise SuperTokensGeneralException(
            f"device_label must be a str or None, not {type(device_label).__name__}",
            kind="invalid_argument",
        )
    return device_label


def create_new_session(
    response: Any,
    user_id: Union[str, int],
    jwt_payload: Any = None,
    session_info: Any = None,
    *,
    request: Any = None,
    device_label: Optional[str] = None,
) -> Session:
    """Starts a session for ``user_id``: a database row, the ``sAccessToken``,
    ``sRefreshToken`` and ``sIdRefreshToken`` cookies, the
    ``id-refresh-token`` header and (with ``ANTI_CSRF_ENABLE``) the
    ``anti-csrf`` header. ``jwt_payload`` travels in the access token (no
    secrets); ``session_info`` stays in the database.

    ``request`` (keyword only, Tessera's addition): the sign-in request.
    With ``CURRENT_SDK`` its ``st-auth-mode`` header chooses how the tokens
    travel (the current SDK's cookies, or ``st-access-token``,
    ``st-refresh-token`` and ``front-token`` headers), within what the
    settings allow; without it the reference library's cookies are used
    when ``REFERENCE_PROFILE`` is on.

    The request also gives the session's device, listed by
    ``get_all_sessions_for_user``: its user agent
    (``request.META["HTTP_USER_AGENT"]``, cut to 256 bytes) and, only with
    ``SUPER_TOKENS["RECORD_CLIENT_ADDRESS"]`` on (personal data, off by
    default), ``request.META["REMOTE_ADDR"]`` (ignored if it is not an IP
    address; behind a proxy, set ``REMOTE_ADDR`` to the client's address in
    a middleware). ``device_label`` (keyword only, Tessera's addition): a
    name your application gives the session, such as "Alice's phone" (cut to
    128 bytes). Neither is checked or trusted, and neither changes how the
    session works."""
    native = _state.get().create_new_session(
        response,
        user_id,
        dumps(jwt_payload, "jwt_payload"),
        dumps(session_info, "session_info"),
        request,
        _label(device_label),
    )
    return Session(native, response)


def get_session(request: Any, response: Any, enable_csrf_protection: bool) -> Session:
    """Verifies the request's session; needs no database access unless
    blacklisting is on. May set a new access-token cookie (first request
    after a refresh).

    Raises ``SuperTokensUnauthorizedException`` (cookies cleared) when there
    is no session, ``SuperTokensTryRefreshTokenException`` when the access
    token must be refreshed or the anti-CSRF check fails."""
    return Session(
        _state.get().get_session(request, response, bool(enable_csrf_protection)), response
    )


def refresh_session(request: Any, response: Any) -> Session:
    """The refresh API (POST at ``REFRESH_TOKEN_PATH``): rotates the refresh
    token and issues new access, id-refresh and anti-CSRF tokens.

    Raises ``SuperTokensUnauthorizedException`` or
    ``SuperTokensTokenTheftException``; both clear the cookies."""
    return Session(_state.get().refresh_session(request, response), response)


def get_session_info(session_handle: str) -> Any:
    """The session info of a live session. Raises
    ``SuperTokensUnauthorizedException`` if it was revoked or has expired (no
    cookie handling: there is no response)."""
    return json.loads(_state.get().get_session_info(_handle(session_handle)))


def update_session_info(session_handle: str, info: Any) -> None:
    """Replaces the session info of a live session. Raises
    ``SuperTokensUnauthorizedException`` if it was revoked or has expired."""
    _state.get().update_session_info(_handle(session_handle), dumps(info, "session_info"))


def revoke_session(session_handle: str) -> bool:
    """Deletes a session. ``True`` iff a row was removed. Without blacklisting
    its access token keeps working until it expires."""
    return _state.get().revoke_session(_handle(session_handle))


def revoke_all_sessions_for_user(user_id: Union[str, int]) -> None:
    """Deletes every session of ``user_id``."""
    _state.get().revoke_all_sessions_for_user(user_id)


def get_all_session_handles_for_user(user_id: Union[str, int]) -> List[str]:
    """Every session handle of ``user_id``."""
    return _state.get().get_all_session_handles_for_user(user_id)


def get_all_sessions_for_user(user_id: Union[str, int]) -> List[Dict[str, Any]]:
    """Every live session of ``user_id``, oldest first (Tessera's addition,
    beside ``get_all_session_handles_for_user``), each a dict:

    ``session_handle``
        as ``get_all_session_handles_for_user`` gives it
    ``created_at``
        when the session was created
    ``last_refreshed_at``
        when it was last refreshed, ``None`` before its first refresh. A
        refresh counts once the client uses the tokens it issued (a refresh
        whose answer never reached the client does not)
    ``last_active_at``
        ``last_refreshed_at``, or ``created_at`` before the first refresh
        (what ``IDLE_TIMEOUT`` counts from)
    ``expires_at``
        when the refresh token expires
    ``user_agent``
        the sign-in request's ``User-Agent`` (at most 256 bytes), or ``None``
    ``client_address``
        the sign-in request's ``REMOTE_ADDR``, only with
        ``RECORD_CLIENT_ADDRESS`` on; else ``None``
    ``device_label``
        the ``device_label`` given to ``create_new_session``, or ``None``

    Times are ``int`` milliseconds since the epoch (UTC), as the reference
    library's times are. The user agent and label are whatever the client
    and the application sent: escape them when you show them. Reading the
    list writes nothing."""
    return _state.get().list_sessions_for_user(user_id)


def set_headers_for_options_api(response: Any) -> None:
    """For the CORS preflight (OPTIONS) response: adds ``anti-csrf``,
    ``supertokens-sdk-name`` and ``supertokens-sdk-version`` to
    ``Access-Control-Allow-Headers`` (appending to any existing value) and
    sets ``Access-Control-Allow-Credentials: true``. Needs no database."""
    _native.set_headers_for_options_api(writer_for(response))


# The async API: the same functions with Django's ``a`` prefix (``aget``,
# ``acreate`` in the ORM), for ``async def`` views under ASGI. Same
# arguments, results, cookies, headers and exceptions as the blocking
# functions above.
#
# How they wait without blocking the event loop, and without a thread per
# waiting call: the native module starts the Rust call as a task on its
# process-wide tokio runtime (two worker threads drive every call in flight,
# woken by the database sockets) and hands back an ``asyncio.Future`` of the
# running loop. When the call is done, a runtime worker schedules its
# completion on the loop with ``loop.call_soon_threadsafe``; the recorded
# cookies and headers are written to the Django response there, on the
# loop's thread. A ``get_session`` that needs no database (no blacklisting)
# completes before the future is returned, so awaiting it does not suspend.
# Alternatives considered: ``sync_to_async``/``run_in_executor`` would
# hold a pool thread for the whole wait of each call (100 waiting calls,
# 100 threads or a queue behind a small pool); pyo3-async-runtimes does what
# is done here but pins the PyO3 version, so the ~100 lines live in
# ``src/runtime.rs`` instead.
#
# Cancelling the awaiting task does not undo the call: a session being
# created is still created (its cookies have no response to go to).


async def acreate_new_session(
    response: Any,
    user_id: Union[str, int],
    jwt_payload: Any = None,
    session_info: Any = None,
    *,
    request: Any = None,
    device_label: Optional[str] = None,
) -> Session:
    """``create_new_session`` for async views."""
    label = _label(device_label)
    manager = await _state.aget()
    native = await manager.acreate_new_session(
        response,
        user_id,
        dumps(jwt_payload, "jwt_payload"),
        dumps(session_info, "session_info"),
        request,
        label,
    )
    return Session(native, response)


async def aget_session(request: Any, response: Any, enable_csrf_protection: bool) -> Session:
    """``get_session`` for async views."""
    manager = await _state.aget()
    native = await manager.aget_session(request, response, bool(enable_csrf_protection))
    return Session(native, response)


async def arefresh_session(request: Any, response: Any) -> Session:
    """``refresh_session`` for async views."""
    manager = await _state.aget()
    return Session(await manager.arefresh_session(request, response), response)


async def aget_session_info(session_handle: str) -> Any:
    """``get_session_info`` for async code."""
    handle = _handle(session_handle)
    manager = await _state.aget()
    return json.loads(await manager.aget_session_info(handle))


async def aupdate_session_info(session_handle: str, info: Any) -> None:
    """``update_session_info`` for async code."""
    handle = _handle(session_handle)
    text = dumps(info, "session_info")
    manager = await _state.aget()
    await manager.aupdate_session_info(handle, text)


async def arevoke_session(session_handle: str) -> bool:
    """``revoke_session`` for async code."""
    handle = _handle(session_handle)
    manager = await _state.aget()
    return await manager.arevoke_session(handle)


async def arevoke_all_sessions_for_user(user_id: Union[str, int]) -> None:
    """``revoke_all_sessions_for_user`` for async code."""
    manager = await _state.aget()
    await manager.arevoke_all_sessions_for_user(user_id)


async def aget_all_session_handles_for_user(user_id: Union[str, int]) -> List[str]:
    """``get_all_session_handles_for_user`` for async code."""
    manager = await _state.aget()
    return await manager.aget_all_session_handles_for_user(user_id)


async def aget_all_sessions_for_user(user_id: Union[str, int]) -> List[Dict[str, Any]]:
    """``get_all_sessions_for_user`` for async code."""
    manager = await _state.aget()
    return await manager.alist_sessions_for_user(user_id)
