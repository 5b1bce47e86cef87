"""The routes of e2e/tests/sdk20.test.mjs, as a Django project writes them
with tessera_django (the same routes as the axum example sdk_test_server)."""

import json
import os
from pathlib import Path

from django.http import FileResponse, Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from tessera_django import supertokens

STATIC = Path(os.environ.get("E2E_STATIC_DIR", "e2e/dist"))


def _file(name, content_type):
    path = STATIC / name
    if not path.is_file():
        raise Http404("run `node build.mjs` in e2e/ first")
    return FileResponse(path.open("rb"), content_type=content_type)


def page20(request):
    return _file("sdk20.html", "text/html; charset=utf-8")


def bundle20(request):
    return _file("sdk20.js", "text/javascript; charset=utf-8")


@csrf_exempt
def login(request):
    body = json.loads(request.body or b"{}")
    response = JsonResponse({})
    session = supertokens.create_new_session(
        response,
        body.get("userId", "anonymous"),
        {"name": body.get("name")},
        {"counter": 0},
        request=request,
    )
    response.content = json.dumps({"sessionHandle": session.get_handle()})
    return response


def user(request):
    response = JsonResponse({})
    session = supertokens.get_session(request, response, request.method != "GET")
    response.content = json.dumps(
        {
            "userId": session.get_user_id(),
            "payload": session.get_jwt_payload(),
            "sessionHandle": session.get_handle(),
        }
    )
    return response


@csrf_exempt
def protected(request):
    response = JsonResponse({})
    session = supertokens.get_session(request, response, True)
    counter = (session.get_session_info() or {}).get("counter", 0) + 1
    session.update_session_info({"counter": counter})
    response.content = json.dumps({"userId": session.get_user_id(), "counter": counter})
    return response


def handles(request):
    return JsonResponse({"handles": supertokens.get_all_session_handles_for_user(request.GET["user"])})


@csrf_exempt
def revoke(request):
    user_id = request.GET["user"]
    count = len(supertokens.get_all_session_handles_for_user(user_id))
    supertokens.revoke_all_sessions_for_user(user_id)
    return JsonResponse({"revoked": count})
