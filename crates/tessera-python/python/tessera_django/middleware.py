"""``SuperTokensMiddleware``: Tessera's exceptions → HTTP responses.

Add it to ``MIDDLEWARE``::

    MIDDLEWARE = [..., "tessera_django.middleware.SuperTokensMiddleware"]

* A view that raises ``SuperTokensUnauthorizedException``,
  ``SuperTokensTryRefreshTokenException`` or
  ``SuperTokensTokenTheftException`` gets a response with the configured
  session-expired status (``SESSION_EXPIRED_STATUS_CODE``, default 401) and a
  small JSON body. For Unauthorized and token theft the session cookies are
  cleared on that response (the protocol clears them; the response the view
  had been given is discarded when it raises), but only if the request
  carried one of the session cookies: a cross-site form POST carries none
  (``SameSite``), and clearing then would let any site log the user out.
  With ``CURRENT_SDK`` the tokens are cleared the way the request carried
  them (the current SDK's cookies and ``front-token: remove``, or empty
  ``st-access-token``/``st-refresh-token`` headers in header mode): the
  exception carries what the core wrote before raising, and that is
  written to this response.
* A response that sets a session cookie or the ``anti-csrf`` /
  ``id-refresh-token`` header gets ``no-store`` in its ``Cache-Control``
  directives, even if the view set ``Cache-Control`` after Tessera did
  (other directives are kept: ``no-store`` only ever makes it stricter).
* ``SuperTokensGeneralException`` becomes a 503 with ``Retry-After: 1`` for
  an outage or a timeout (``kind`` ``"unavailable"``/``"timeout"``), a 400
  for a call that cannot be done as asked (``"invalid_argument"``) and a 500
  otherwise; the body says nothing about the cause, and the exception is
  logged (logger ``tessera_django``).
* Cookies and headers that :class:`tessera_django.authentication.SuperTokensAuthentication`
  recorded while authenticating a DRF request are written to the final
  response (a new access token after a refresh, cleared cookies).
"""

import logging
from typing import Any, Awaitable, Callable, Optional, Union

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from django.http import HttpRequest, HttpResponse, JsonResponse

from . import _native, _state
from ._response import PendingResponse, ResponseWriter, ensure_no_store
from .exceptions import (
    SuperTokensException,
    SuperTokensGeneralException,
    SuperTokensTokenTheftException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)

__all__ = ["SuperTokensMiddleware", "response_for_exception", "PENDING_ATTRIBUTE", "RECORDED_ATTRIBUTE"]

logger = logging.getLogger("tessera_django")

#: Attribute of the Django request holding a :class:`PendingResponse`.
PENDING_ATTRIBUTE = "_tessera_pending_response"


#: Response headers that carry session state (the core sets them): the
#: reference profile's, and the current SDK's (``CURRENT_SDK``).
_SESSION_HEADERS = ("anti-csrf", "id-refresh-token", "front-token", "st-access-token", "st-refresh-token")

#: Attribute of a Tessera exception holding what the core wrote to the
#: response before raising (a :class:`PendingResponse`; set by the native
#: module for Unauthorized, TryRefreshToken and token theft).
RECORDED_ATTRIBUTE = "_tessera_response"


def _carries_session_cookie(request: Any) -> bool:
    """Whether the request carried any of the three session cookies (an
    empty value counts: it is still a cookie the browser holds)."""
    cookies = getattr(request, "COOKIES", None)
    if not cookies:
        return False
    return any(name in cookies for name in _state.get().cookie_names)


def _sets_session_state(response: HttpResponse) -> bool:
    if any(response.has_header(header) for header in _SESSION_HEADERS):
        return True
    cookies = getattr(response, "cookies", None)
    if not cookies:
        # The common case: no manager is needed to know.
        return False
    # Only the core sets session cookies: no manager built yet (or since the
    # settings changed), no session cookie set by it. Never builds one here,
    # which could wait on the database for a page that does not use Tessera.
    manager = _state.peek() or (_state.get() if _mentions_session_cookie(cookies) else None)
    return manager is not None and any(name in cookies for name in manager.cookie_names)


def _mentions_session_cookie(cookies: Any) -> bool:
    """Whether a cookie name could be a session cookie (the base names, with
    or without a prefix): only then is a manager worth building."""
    return any(
        name.endswith((_native.ACCESS_TOKEN_COOKIE, _native.REFRESH_TOKEN_COOKIE, _native.ID_REFRESH_TOKEN_COOKIE))
        for name in cookies
    )


def response_for_exception(exception: SuperTokensException, request: Any = None) -> HttpResponse:
    """The response the protocol prescribes for ``exception``. With
    ``request``, the session cookies are cleared only if it carried one of
    them (without, they are always cleared)."""
    if isinstance(exception, SuperTokensGeneralException) or not isinstance(
        exception,
        (
            SuperTokensUnauthorizedException,
            SuperTokensTryRefreshTokenException,
            SuperTokensTokenTheftException,
        ),
    ):
        # Opaque: nothing about the database or the cause, only what the
        # client can do: retry an outage (503), not repeat a bad call (400).
        kind = getattr(exception, "kind", "internal")
        if kind in ("unavailable", "timeout"):
            logger.error("Tessera error (%s)", kind, exc_info=exception)
            response = HttpResponse("Service Unavailable", status=503, content_type="text/plain")
            response["Retry-After"] = "1"
            return response
        if kind == "invalid_argument":
            logger.warning("Tessera refused a call (invalid argument)", exc_info=exception)
            return HttpResponse("Bad Request", status=400, content_type="text/plain")
        logger.error("Tessera error", exc_info=exception)
        return HttpResponse("Internal Server Error", status=500, content_type="text/plain")
    status = _state.settings().session_expired_status
    recorded: Optional[PendingResponse] = getattr(exception, RECORDED_ATTRIBUTE, None)
    try_refresh = isinstance(exception, SuperTokensTryRefreshTokenException)
    if try_refresh:
        response = JsonResponse({"message": "try refresh token"}, status=status)
    elif isinstance(exception, SuperTokensTokenTheftException):
        logger.warning(
            "refresh token reuse (token theft) for session %s", exception.get_session_handle()
        )
        response = JsonResponse({"message": "token theft detected"}, status=status)
    else:
        response = JsonResponse({"message": "unauthorised"}, status=status)
    if isinstance(recorded, PendingResponse):
        # What the core wrote before raising: the clearing, the way the
        # request carried the tokens (the reference profile's cookies, the
        # current SDK's cookies and front-token, or header mode's empty
        # token headers), and only if the request carried a session token
        # (docs/PROTOCOL.md §4.2, §9.5).
        recorded.apply_to(response)
    elif not try_refresh:
        try:
            if request is None or _carries_session_cookie(request):
                _state.get().clear_session_cookies(ResponseWriter(response))
        except SuperTokensGeneralException:
            logger.exception("Tessera could not clear the session cookies")
    return response


class SuperTokensMiddleware:
    """See the module documentation.

    Works in sync (WSGI) and async (ASGI) middleware stacks: Django gives it
    the kind of ``get_response`` the stack has, and it answers in kind, so
    an ASGI project with only async-capable middleware never leaves the
    event loop for it. Its own work after the view does not wait on
    anything, except building the manager the first time a response sets a
    session cookie before any Tessera call (then in a worker thread, see
    ``_state.aget``). ``process_exception`` is synchronous in every Django
    version (Django runs the exception middleware of an async stack through
    ``sync_to_async``); it needs no database.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Union[HttpResponse, Awaitable[HttpResponse]]:
        if self._is_async:
            return self._acall(request)
        return self._finish(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        cookies = getattr(response, "cookies", None)
        if cookies and _state.ready() is None and _mentions_session_cookie(cookies):
            try:
                await _state.aget()
            except SuperTokensGeneralException:
                pass
        return self._finish(request, response)

    def _finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        pending: Optional[PendingResponse] = getattr(request, PENDING_ATTRIBUTE, None)
        if pending is not None:
            pending.apply_to(response)
        try:
            if _sets_session_state(response):
                ensure_no_store(response)
        except SuperTokensGeneralException:
            # Settings that cannot build a manager: no session state was set.
            pass
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Optional[HttpResponse]:
        if isinstance(exception, SuperTokensException):
            return response_for_exception(exception, request)
        return None


def pending_response(request: Any) -> PendingResponse:
    """The :class:`PendingResponse` of a Django (or DRF) request, created on
    first use."""
    django_request = getattr(request, "_request", request)
    pending = getattr(django_request, PENDING_ATTRIBUTE, None)
    if pending is None:
        pending = PendingResponse()
        setattr(django_request, PENDING_ATTRIBUTE, pending)
    return pending
