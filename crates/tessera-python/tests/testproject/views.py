"""Views written the way the reference library's documentation writes them: one per
function of its API, plus DRF views. Only the imports differ from a supertokens_jwt_ref
project."""

import asyncio
import json

from django.http import HttpResponse, JsonResponse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from tessera_django import supertokens
from tessera_django.exceptions import (
    SuperTokensGeneralException,
    SuperTokensTokenTheftException,
    SuperTokensTryRefreshTokenException,
    SuperTokensUnauthorizedException,
)


def _body(request):
    return json.loads(request.body or b"{}")


def _json(response, data):
    response["Content-Type"] = "application/json"
    response.content = json.dumps(data)
    return response


def login(request):
    data = _body(request)
    response = HttpResponse()
    session = supertokens.create_new_session(
        response, data["user_id"], data.get("payload"), data.get("info")
    )
    return _json(response, {"handle": session.get_handle(), "user_id": session.get_user_id()})


def device_login(request):
    """A sign-in that records the device: the request's user agent (and
    address with RECORD_CLIENT_ADDRESS), and the label the body gives."""
    data = _body(request)
    response = HttpResponse()
    session = supertokens.create_new_session(
        response, data["user_id"], request=request, device_label=data.get("label")
    )
    return _json(response, {"handle": session.get_handle()})


def device_list(request, user_id):
    """The user's sessions with their devices (get_all_sessions_for_user)."""
    return JsonResponse({"sessions": supertokens.get_all_sessions_for_user(user_id)})


async def adevice_login(request):
    data = _body(request)
    response = HttpResponse()
    session = await supertokens.acreate_new_session(
        response, data["user_id"], request=request, device_label=data.get("label")
    )
    return _json(response, {"handle": session.get_handle()})


async def adevice_list(request, user_id):
    return JsonResponse({"sessions": await supertokens.aget_all_sessions_for_user(user_id)})


def refresh_converged(request):
    """The refresh API, answering whether the grace window converged it."""
    response = HttpResponse()
    session = supertokens.refresh_session(request, response)
    return _json(response, {"converged": session.refresh_converged_within_grace()})


def login_cached(request):
    """A view that sets a weaker Cache-Control after Tessera set no-store
    (the middleware puts no-store back)."""
    data = _body(request)
    response = HttpResponse()
    supertokens.create_new_session(response, data["user_id"])
    response["Cache-Control"] = data.get("cache_control", "public, max-age=60")
    return response


def protected(request):
    """Anti-CSRF is enforced for non-GET requests, as the reference library recommends.
    Errors propagate to SuperTokensMiddleware."""
    response = HttpResponse()
    session = supertokens.get_session(request, response, request.method != "GET")
    return _json(
        response,
        {
            "user_id": session.get_user_id(),
            "payload": session.get_jwt_payload(),
            "handle": session.get_handle(),
        },
    )


def protected_manual(request):
    """The reference library's documented style: the view handles the exceptions itself
    and answers 440 ("session expired") on the very response it was given,
    so the cookies cleared by get_session reach the client."""
    response = HttpResponse()
    try:
        session = supertokens.get_session(request, response, True)
    except SuperTokensGeneralException:
        response.status_code = 500
        return response
    except SuperTokensUnauthorizedException:
        response.status_code = 440
        response.content = b"unauthorised"
        return response
    except SuperTokensTryRefreshTokenException:
        response.status_code = 440
        response.content = b"try refresh token"
        return response
    return _json(response, {"user_id": session.get_user_id()})


def refresh(request):
    response = HttpResponse()
    if request.method == "OPTIONS":
        supertokens.set_headers_for_options_api(response)
        return response
    try:
        session = supertokens.refresh_session(request, response)
    except SuperTokensTokenTheftException as e:
        # The reference library leaves revocation to the caller; Tessera has already
        # revoked (REVOKE_SESSION_ON_TOKEN_THEFT), and this is harmless.
        supertokens.revoke_session(e.get_session_handle())
        response.status_code = 440
        return _json(response, {"theft": True, "user_id": e.get_user_id(), "handle": e.get_session_handle()})
    except SuperTokensUnauthorizedException:
        response.status_code = 440
        return response
    return _json(response, {"user_id": session.get_user_id()})


def session_info(request):
    response = HttpResponse()
    session = supertokens.get_session(request, response, request.method != "GET")
    if request.method == "POST":
        session.update_session_info(_body(request))
        return _json(response, {"updated": True})
    return _json(response, {"info": session.get_session_info()})


def logout(request):
    response = HttpResponse()
    session = supertokens.get_session(request, response, True)
    session.revoke_session()
    return _json(response, {"revoked": True})


def user_sessions(request, user_id):
    """By user: list (GET) or revoke all (DELETE). User ids in the URL are
    strings; ?int=1 makes it an integer id."""
    uid = int(user_id) if request.GET.get("int") else user_id
    if request.method == "DELETE":
        supertokens.revoke_all_sessions_for_user(uid)
        return JsonResponse({"revoked": True})
    return JsonResponse({"handles": supertokens.get_all_session_handles_for_user(uid)})


def session_by_handle(request, handle):
    """By handle: info (GET), update (PUT), revoke (DELETE)."""
    if request.method == "DELETE":
        return JsonResponse({"revoked": supertokens.revoke_session(handle)})
    try:
        if request.method == "PUT":
            supertokens.update_session_info(handle, _body(request))
            return JsonResponse({"updated": True})
        return JsonResponse({"info": supertokens.get_session_info(handle)})
    except SuperTokensUnauthorizedException:
        return JsonResponse({"error": "no such session"}, status=404)


def options(request):
    response = HttpResponse()
    response["Access-Control-Allow-Headers"] = "content-type"
    supertokens.set_headers_for_options_api(response)
    return response


class ApiLogin(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        response = Response({"ok": True})
        session = supertokens.create_new_session(
            response, request.data["user_id"], request.data.get("payload")
        )
        response.data = {"handle": session.get_handle()}
        return response


class ApiRefresh(APIView):
    permission_classes = [AllowAny]
    authentication_classes = []

    def post(self, request):
        response = Response()
        session = supertokens.refresh_session(request, response)
        response.data = {"user_id": session.get_user_id()}
        return response


class ApiMe(APIView):
    def get(self, request):
        return Response(
            {
                "user_id": request.user.id,
                "payload": request.auth.get_jwt_payload(),
                "info": request.auth.get_session_info(),
            }
        )

    def post(self, request):
        request.auth.update_session_info(request.data)
        return Response({"updated": True})


class ApiPublic(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"user": None if request.user is None else request.user.id})


# Async views (ASGI): the same API with Django's `a` prefix.


async def alogin(request):
    data = _body(request)
    response = HttpResponse()
    session = await supertokens.acreate_new_session(
        response, data["user_id"], data.get("payload"), data.get("info")
    )
    return _json(response, {"handle": session.get_handle(), "user_id": session.get_user_id()})


async def aprotected(request):
    """get_session, then a database read (the session info) and, on POST, a
    write: each awaited without blocking the loop."""
    response = HttpResponse()
    session = await supertokens.aget_session(request, response, request.method != "GET")
    if request.method == "POST":
        await session.aupdate_session_info(_body(request))
    info = await session.aget_session_info()
    return _json(response, {"user_id": session.get_user_id(), "info": info})


async def arefresh(request):
    response = HttpResponse()
    session = await supertokens.arefresh_session(request, response)
    return _json(response, {"user_id": session.get_user_id()})


async def alogout(request):
    response = HttpResponse()
    session = await supertokens.aget_session(request, response, True)
    await session.arevoke_session()
    return _json(response, {"revoked": True})


async def auser_sessions(request, user_id):
    if request.method == "DELETE":
        await supertokens.arevoke_all_sessions_for_user(user_id)
        return JsonResponse({"revoked": True})
    return JsonResponse({"handles": await supertokens.aget_all_session_handles_for_user(user_id)})


async def asession_by_handle(request, handle):
    if request.method == "DELETE":
        return JsonResponse({"revoked": await supertokens.arevoke_session(handle)})
    try:
        if request.method == "PUT":
            await supertokens.aupdate_session_info(handle, _body(request))
            return JsonResponse({"updated": True})
        return JsonResponse({"info": await supertokens.aget_session_info(handle)})
    except SuperTokensUnauthorizedException:
        return JsonResponse({"error": "no such session"}, status=404)


async def asleep(request):
    """Awaits asyncio.sleep: only answers in time if the loop is free."""
    await asyncio.sleep(float(request.GET.get("s", "0.5")))
    return JsonResponse({"slept": True})


def sign_in(request):
    """Sign-in for the current supertokens-website SDK and Bearer clients:
    the request is passed on, so its st-auth-mode chooses the transport."""
    data = _body(request)
    response = JsonResponse({})
    session = supertokens.create_new_session(
        response, data["user_id"], data.get("payload"), data.get("info"), request=request
    )
    return _json(response, {"handle": session.get_handle(), "user_id": session.get_user_id()})


def counter(request):
    """A protected POST that changes the session info (a counter)."""
    response = HttpResponse()
    session = supertokens.get_session(request, response, True)
    count = (session.get_session_info() or {}).get("counter", 0) + 1
    session.update_session_info({"counter": count})
    return _json(response, {"user_id": session.get_user_id(), "counter": count})
