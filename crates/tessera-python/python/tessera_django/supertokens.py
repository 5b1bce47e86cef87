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
from typing import Any, List, Union

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
    "set_headers_for_options_api",
]

def _handle(session_handle: Any) -> str:
    if not isinstance(session_handle, str):
        raise SuperTokensGeneralException(
            f"session_handle must be a str, not {type(session_handle).__name__}",
            kind="invalid_argument",
        )
    return session_handle


def create_new_session(
    response: Any, user_id: Union[str, int], jwt_payload: Any = None, session_info: Any = None
) -> Session:
    """Starts a session for ``user_id``: a database row, the ``sAccessToken``,
    ``sRefreshToken`` and ``sIdRefreshToken`` cookies, the
    ``id-refresh-token`` header and (with ``ANTI_CSRF_ENABLE``) the
    ``anti-csrf`` header. ``jwt_payload`` travels in the access token (no
    secrets); ``session_info`` stays in the database."""
    native = _state.get().create_new_session(
        response, user_id, dumps(jwt_payload, "jwt_payload"), dumps(session_info, "session_info")
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


def set_headers_for_options_api(response: Any) -> None:
    """For the CORS preflight (OPTIONS) response: adds ``anti-csrf``,
    ``supertokens-sdk-name`` and ``supertokens-sdk-version`` to
    ``Access-Control-Allow-Headers`` (appending to any existing value) and
    sets ``Access-Control-Allow-Credentials: true``. Needs no database."""
    _native.set_headers_for_options_api(writer_for(response))
