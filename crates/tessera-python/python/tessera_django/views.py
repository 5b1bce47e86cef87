"""Views for the current supertokens-website SDK's API (``CURRENT_SDK``).

The reference library leaves the refresh view to you (it calls
``supertokens.refresh_session`` at ``REFRESH_TOKEN_PATH``), and that keeps
working. The current SDK calls two fixed endpoints under its
``apiBasePath`` and reads their answers, so Tessera provides them; route
them with :func:`tessera_django.urls.current_sdk_urlpatterns`:

* ``POST <API_BASE_PATH>/session/refresh`` → :func:`refresh`: rotates the
  tokens (the refresh cookie, or ``Authorization: Bearer <refresh token>``
  in header mode) and answers ``200 {"status": "ok"}``;
* ``POST <API_BASE_PATH>/signout`` → :func:`signout`: verifies the session
  (the anti-CSRF token is required in cookie mode, as for any POST),
  revokes it, clears its tokens and answers ``200 {"status": "OK"}``, which
  is what the SDK's ``signOut()`` reads.

Errors are answered here, as ``SuperTokensMiddleware`` answers them (the
session-expired status, tokens cleared the way the request carried them),
so the views work with or without the middleware. Both are exempt from
Django's CSRF middleware: the SDK does not send Django's ``csrftoken``, the
refresh cookie is ``HttpOnly``, ``SameSite`` and scoped to the refresh path,
and sign-out is protected by Tessera's own anti-CSRF token.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import _state, supertokens
from .exceptions import SuperTokensException
from .middleware import response_for_exception

__all__ = ["refresh", "signout", "jwks"]


def _preflight() -> HttpResponse:
    response = HttpResponse(status=204)
    supertokens.set_headers_for_options_api(response)
    return response


def _not_allowed() -> HttpResponse:
    response = HttpResponse("Method Not Allowed", status=405, content_type="text/plain")
    response["Allow"] = "POST, OPTIONS"
    return response


@csrf_exempt
def refresh(request: HttpRequest) -> Any:
    """The current SDK's refresh API (``POST``; ``OPTIONS`` is a CORS
    preflight)."""
    if request.method == "OPTIONS":
        return _preflight()
    if request.method != "POST":
        return _not_allowed()
    response = JsonResponse({"status": "ok"})
    try:
        supertokens.refresh_session(request, response)
    except SuperTokensException as e:
        return response_for_exception(e, request)
    return response


@csrf_exempt
def signout(request: HttpRequest) -> Any:
    """The current SDK's sign-out API (``POST``; ``OPTIONS`` is a CORS
    preflight)."""
    if request.method == "OPTIONS":
        return _preflight()
    if request.method != "POST":
        return _not_allowed()
    response = JsonResponse({"status": "OK"})
    try:
        supertokens.get_session(request, response, True).revoke_session()
    except SuperTokensException as e:
        return response_for_exception(e, request)
    return response


def jwks(request: HttpRequest) -> Any:
    """The access-token public keys as a JWKS (RFC 7517), for services that
    verify Tessera's access tokens themselves (``ACCESS_TOKEN_ALGORITHM``
    ``"EdDSA"``, ``"ES256"`` or ``"RS256"``): the current key and, until
    every token it signed has expired, the previous one, with a
    ``Cache-Control: max-age`` that ends no later than the next scheduled
    rotation. A token naming a key id the verifier does not know is its
    signal to fetch the set again. ``404`` in HS256 mode, whose key is a
    secret. Route it with :func:`tessera_django.urls.jwks_urlpatterns`
    (``/.well-known/jwks.json``) or wherever you like."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse("Method Not Allowed", status=405, content_type="text/plain")
        response["Allow"] = "GET, HEAD"
        return response
    try:
        doc = _state.get().jwks()
    except SuperTokensException as e:
        return response_for_exception(e, request)
    if doc is None:
        response = HttpResponse(status=404)
        response["Cache-Control"] = "no-store"
        return response
    text, max_age = doc
    response = HttpResponse(text, content_type="application/jwk-set+json")
    response["Cache-Control"] = f"public, max-age={max_age}"
    return response
