"""get_session through Django, in the interpreter and Django this runs under:
the sync API and the async API, called directly and through Django's request
handler (a sync view under django.test.Client, an async view under
django.test.AsyncClient, which drives Django's ASGI handler).

scripts/bench.sh runs it in two environments in the same run (Django 6.x on
Python 3.13 and Django 4.2 on Python 3.11, the same abi3 wheel) and writes
the table into BENCHMARKS.md. Prints one JSON object. No database is touched
by get_session (no blacklisting), so the numbers are the Python-side path.

    python bench_versions.py [--quick]
"""

import asyncio
import json
import os
import platform
import statistics
import sys
import time

import django
from django.conf import settings

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 7
CALLS = 200 if QUICK else 5000
REQUESTS = 50 if QUICK else 1000

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-only",
    ALLOWED_HOSTS=["testserver"],
    USE_TZ=True,
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "tessera_django"],
    MIDDLEWARE=["tessera_django.middleware.SuperTokensMiddleware"],
    ROOT_URLCONF=__name__,
    SUPER_TOKENS={"COOKIE_SECURE": False},
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import AsyncClient, Client, RequestFactory  # noqa: E402
from django.urls import path  # noqa: E402

from tessera_django import supertokens  # noqa: E402


def sync_view(request):
    response = HttpResponse()
    supertokens.get_session(request, response, False)
    return response


async def async_view(request):
    response = HttpResponse()
    await supertokens.aget_session(request, response, False)
    return response


urlpatterns = [path("sync", sync_view), path("async", async_view)]


def median_us(samples):
    return round(statistics.median(samples) * 1e6, 2)


def main():
    call_command("migrate", verbosity=0)
    login = HttpResponse()
    supertokens.create_new_session(login, "bench-user", {"role": "user"})
    cookies = {name: morsel.value for name, morsel in login.cookies.items()}
    factory = RequestFactory()
    request = factory.get("/")
    request.COOKIES.update(cookies)
    responses = [HttpResponse() for _ in range(CALLS)]

    def sync_round():
        t0 = time.perf_counter()
        for response in responses:
            supertokens.get_session(request, response, False)
        return (time.perf_counter() - t0) / CALLS

    async def async_round():
        t0 = time.perf_counter()
        for response in responses:
            await supertokens.aget_session(request, response, False)
        return (time.perf_counter() - t0) / CALLS

    client = Client()
    aclient = AsyncClient()
    for name, value in cookies.items():
        client.cookies[name] = value
        aclient.cookies[name] = value

    def handler_sync_round():
        t0 = time.perf_counter()
        for _ in range(REQUESTS):
            assert client.get("/sync").status_code == 200
        return (time.perf_counter() - t0) / REQUESTS

    async def handler_async_round():
        t0 = time.perf_counter()
        for _ in range(REQUESTS):
            assert (await aclient.get("/async")).status_code == 200
        return (time.perf_counter() - t0) / REQUESTS

    results = {"sync": [], "async": [], "handler_sync": [], "handler_async": []}
    loop = asyncio.new_event_loop()
    sync_round()
    loop.run_until_complete(async_round())
    for _ in range(ROUNDS):
        results["sync"].append(sync_round())
        results["async"].append(loop.run_until_complete(async_round()))
        results["handler_sync"].append(handler_sync_round())
        results["handler_async"].append(loop.run_until_complete(handler_async_round()))
    loop.close()
    from tessera_django import _native

    print(json.dumps({
        "python": platform.python_version(),
        "module": os.path.basename(_native.__file__),
        "django": django.get_version(),
        **{key: median_us(values) for key, values in results.items()},
        "rounds": ROUNDS,
        "calls": CALLS,
        "requests": REQUESTS,
    }))


if __name__ == "__main__":
    main()
