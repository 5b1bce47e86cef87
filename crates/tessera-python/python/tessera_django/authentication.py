"""Django REST framework authentication with Tessera sessions.

::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": [
            "tessera_django.authentication.SuperTokensAuthentication",
        ],
    }
    MIDDLEWARE = [..., "tessera_django.middleware.SuperTokensMiddleware"]

``request.user`` is a :class:`SuperTokensUser` (``user.id`` is the session's
user id) and ``request.auth`` is the :class:`~tessera_django.session.Session`.
Override :meth:`SuperTokensAuthentication.get_user` to return your own user
model instead.

* No ``sIdRefreshToken`` and no ``sAccessToken`` cookie (and, with
  ``CURRENT_SDK`` header mode, no ``Authorization: Bearer`` header): not
  attempted (``None``), so anonymous requests reach ``AllowAny`` views and
  ``IsAuthenticated`` answers 401. A bearer token is checked without
  anti-CSRF, whatever the method (docs/PROTOCOL.md §9.4).
* Anti-CSRF is checked for unsafe methods (POST, PUT, PATCH, DELETE), as the
  reference library recommends.
* A session that must be refreshed or is gone raises :class:`SessionExpired`
  with the session-expired status (``SESSION_EXPIRED_STATUS_CODE``).

Cookies the core sets while authenticating (a new access token on the first
request after a refresh, cleared cookies) are written to the final response
by :class:`~tessera_django.middleware.SuperTokensMiddleware`, which must
therefore be installed.
"""

from typing import Any, Optional, Tuple, Union

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS

from . import _native, _state, supertokens
from .exceptions import (
    SuperTokensTokenTheftException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)
from .middleware import pending_response
from .session import Session

__all__ = ["SuperTokensAuthentication", "SuperTokensUser", "SessionExpired"]


class SessionExpired(exceptions.APIException):
    """The session must be refreshed (``code="try_refresh_token"``) or is gone
    (``code="unauthorised"``). Its status is ``SESSION_EXPIRED_STATUS_CODE``.

    Not a subclass of ``AuthenticationFailed``: DRF would turn that into 403
    unless a ``WWW-Authenticate`` scheme applies, and the front end expects
    the session-expired status."""

    status_code = 401
    default_detail = "Session expired."
    default_code = "session_expired"

    def __init__(self, detail: str, code: str, status_code: int) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code


class SuperTokensUser:
    """The authenticated user of a Tessera session (no database lookup)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, session: Session) -> None:
        self.session = session
        self.id: Union[str, int] = session.get_user_id()
        self.pk = self.id

    def __str__(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<SuperTokensUser {self.id!r}>"


class SuperTokensAuthentication(BaseAuthentication):
    """See the module documentation."""

    def enable_csrf_protection(self, request: Any) -> bool:
        """Whether to check the ``anti-csrf`` header: for unsafe methods."""
        return request.method not in SAFE_METHODS

    def get_user(self, session: Session) -> Any:
        """The ``request.user`` for ``session``; override to load your model."""
        return SuperTokensUser(session)

    def authenticate(self, request: Any) -> Optional[Tuple[Any, Session]]:
        cookies = request.COOKIES
        # With COOKIE_NAME_PREFIX the access and id-refresh cookies both
        # carry the prefix (the core validates it when it builds the manager).
        prefix = _state.settings().core["COOKIE_NAME_PREFIX"]
        prefix = prefix if isinstance(prefix, str) else ""
        if (
            not cookies.get(prefix + _native.ID_REFRESH_TOKEN_COOKIE)
            and not cookies.get(prefix + _native.ACCESS_TOKEN_COOKIE)
            and not _bearer_allowed_and_sent(request)
        ):
            return None
        pending = pending_response(request)
        status = _state.settings().session_expired_status
        try:
            session = supertokens.get_session(
                request, pending, self.enable_csrf_protection(request)
            )
        except SuperTokensTryRefreshTokenException as e:
            raise SessionExpired("Try refresh token.", "try_refresh_token", status) from e
        except (SuperTokensUnauthorizedException, SuperTokensTokenTheftException) as e:
            raise SessionExpired("Unauthorised.", "unauthorised", status) from e
        return (self.get_user(session), session)

    def authenticate_header(self, request: Any) -> str:
        # A scheme makes DRF answer unauthenticated requests with 401, not 403.
        return "SuperTokens"


def _bearer_allowed_and_sent(request: Any) -> bool:
    """Whether header mode is allowed (``CURRENT_SDK["HEADER"]``) and the
    request sends ``Authorization: Bearer ...`` (scheme case-insensitive);
    the core decides everything else about the header."""
    sdk = _state.settings().core.get("CURRENT_SDK")
    if not sdk or not sdk.get("HEADER"):
        return False
    value = request.META.get("HTTP_AUTHORIZATION", "")
    return isinstance(value, str) and value[:7].lower() == "bearer "
