"""The session object returned by ``create_new_session``, ``get_session`` and
``refresh_session``."""

import json
from typing import Any, Union

from . import _native
from ._json import dumps
from ._response import writer_for

__all__ = ["Session"]

_UNSET = object()


class Session:
    """A verified session, bound to the response of the request it came from
    (its ``revoke_session``, ``get_session_info`` and ``update_session_info``
    clear the cookies on that response when the session turns out to be
    gone)."""

    __slots__ = ("_native", "_response", "_payload")

    def __init__(self, native: _native.Session, response: Any) -> None:
        self._native = native
        self._response = response
        self._payload: Any = _UNSET

    def get_user_id(self) -> Union[str, int]:
        """The user id given to ``create_new_session``, with its type."""
        return self._native.user_id

    def get_jwt_payload(self) -> Any:
        """The JWT payload, deeply equal to what was given at creation."""
        if self._payload is _UNSET:
            self._payload = json.loads(self._native.jwt_payload_json)
        return self._payload

    def get_handle(self) -> str:
        """The session handle (stable for the session's life)."""
        return self._native.handle

    def refresh_converged_within_grace(self) -> bool:
        """Tessera's addition: ``True`` when this session comes from a
        ``refresh_session`` that ``REFRESH_TOKEN_GRACE_PERIOD`` answered:
        the client sent a refresh token that another refresh (another tab, a
        retried request) had already replaced, and got fresh tokens instead
        of a theft report. ``False`` otherwise, and always without a grace
        period (the reference library's behaviour). Worth a log line; no
        action is needed."""
        return self._native.refresh_converged_within_grace()

    def revoke_session(self) -> None:
        """Deletes the session from the database and clears the cookies."""
        self._native.revoke_session(writer_for(self._response))

    def get_session_info(self) -> Any:
        """The session info from the database. Raises
        ``SuperTokensUnauthorizedException`` (and clears the cookies) if the
        session was revoked or has expired."""
        return json.loads(self._native.get_session_info(writer_for(self._response)))

    def update_session_info(self, info: Any) -> None:
        """Replaces the session info. Raises
        ``SuperTokensUnauthorizedException`` (and clears the cookies) if the
        session was revoked or has expired."""
        self._native.update_session_info(writer_for(self._response), dumps(info, "session_info"))

    async def arevoke_session(self) -> None:
        """``revoke_session`` for async views."""
        await self._native.arevoke_session(writer_for(self._response))

    async def aget_session_info(self) -> Any:
        """``get_session_info`` for async views."""
        return json.loads(await self._native.aget_session_info(writer_for(self._response)))

    async def aupdate_session_info(self, info: Any) -> None:
        """``update_session_info`` for async views."""
        await self._native.aupdate_session_info(
            writer_for(self._response), dumps(info, "session_info")
        )

    def __repr__(self) -> str:
        return f"<Session handle={self.get_handle()!r} user_id={self.get_user_id()!r}>"
