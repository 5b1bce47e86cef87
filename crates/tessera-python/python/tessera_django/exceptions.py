"""The reference library's exception classes.

Every error that comes out of :mod:`tessera_django.supertokens` and the
session object is one of these; nothing else crosses the boundary (a Rust
panic is caught and raised as :class:`SuperTokensGeneralException`).

=====================================  ===========================================
class                                  when
=====================================  ===========================================
SuperTokensGeneralException            database unreachable or failing, bad
                                       settings, misuse (a user id that is neither
                                       ``str`` nor ``int``, a payload that is not
                                       JSON). ``kind`` says which: answer 503 for
                                       ``unavailable``/``timeout``, 400 for
                                       ``invalid_argument``, 500 otherwise.
SuperTokensUnauthorizedException       no session: cookies missing, session revoked
                                       or expired. Cookies have been cleared on the
                                       response that was passed in.
SuperTokensTryRefreshTokenException    the access token is missing, expired,
                                       invalid or signed with an old key, or the
                                       anti-CSRF check failed. Cookies untouched;
                                       the front end should call the refresh API.
SuperTokensTokenTheftException         a refresh token was reused. Cookies have
                                       been cleared; the session is revoked unless
                                       ``REVOKE_SESSION_ON_TOKEN_THEFT`` is False.
=====================================  ===========================================
"""

from typing import Any, Optional, Tuple, Union

__all__ = [
    "SuperTokensException",
    "SuperTokensGeneralException",
    "SuperTokensUnauthorizedException",
    "SuperTokensTryRefreshTokenException",
    "SuperTokensTokenTheftException",
]


class SuperTokensException(Exception):
    """Base class of every Tessera error."""


class SuperTokensGeneralException(SuperTokensException):
    """Something went wrong that is not about the client's session.

    ``kind`` says what the caller can do about it (an addition to the
    reference library's class, which has no such attribute):

    * ``"unavailable"``: the database cannot be reached or failed; retry later.
    * ``"timeout"``: the database did not answer in time; retry later.
    * ``"invalid_argument"``: the call cannot be done as asked (a user id over
      the storage limit, JSON nested too deeply, bad settings); fix the call.
    * ``"internal"``: a fault inside Tessera or corrupt stored data.

    The middleware answers 503 (with ``Retry-After``), 400 and 500 for them.
    """

    #: One of ``"unavailable"``, ``"timeout"``, ``"invalid_argument"``,
    #: ``"internal"``.
    kind: str = "internal"

    def __init__(self, *args: Any, kind: str = "internal") -> None:
        super().__init__(*args)
        self.kind = kind

    def is_retryable(self) -> bool:
        """Whether the same call may succeed later (an outage or a timeout)."""
        return self.kind in ("unavailable", "timeout")


class SuperTokensUnauthorizedException(SuperTokensException):
    """There is no valid session; the auth cookies have been cleared."""


class SuperTokensTryRefreshTokenException(SuperTokensException):
    """The access token must be refreshed (call the refresh API)."""


class SuperTokensTokenTheftException(SuperTokensException):
    """A refresh token was used after it had been replaced.

    ``reuse_kind`` (Tessera's addition; ``None`` when raised by other code)
    says which kind of reuse it was, so that a flaky client can be told from
    an attack (docs/PROTOCOL.md §3.9): ``"within_grace"`` (a superseded token
    or a sibling reused soon after the refresh: usually a client without a
    cross-tab lock), ``"orphaned_branch"`` (a sibling, later),
    ``"silent_thief"`` (the superseded token itself, later) or
    ``"stale_lineage"`` (a token two or more rotations old)."""

    reuse_kind: Optional[str] = None

    def __init__(self, user_id: Union[str, int], session_handle: str) -> None:
        super().__init__("token theft detected")
        self.user_id = user_id
        self.session_handle = session_handle

    def get_reuse_kind(self) -> Optional[str]:
        """Which kind of reuse it was (see the class documentation)."""
        return self.reuse_kind

    def get_user_id(self) -> Union[str, int]:
        """The owner of the session whose refresh token was reused."""
        return self.user_id

    def get_session_handle(self) -> str:
        """The session whose refresh token was reused."""
        return self.session_handle

    def __reduce__(self) -> Tuple[Any, ...]:
        # Keeps the exception picklable (parallel test runners, task queues).
        return (type(self), (self.user_id, self.session_handle))
