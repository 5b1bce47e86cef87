"""What checking a session adds to a request served by Django, beside what
Django's own session engines and the reference library add.

    python bench_overhead.py [--quick]

One Django project (bench_settings, plus django.contrib.sessions), one
``WSGIHandler`` (Django's real request path: request object, URL resolution,
the view, the response), called with prepared WSGI environs; only the
handler call is inside the clock. Views, each answering ``200 ok``:

* ``plain``: nothing else (the baseline);
* ``tessera``: ``tessera_django.supertokens.get_session(request, response,
  False)`` on a valid access token (no blacklisting: no database);
* ``reference``: the reference library's ``get_session`` on its own token;
* ``django-db``, ``django-cached_db``, ``django-signed_cookies``: what
  ``SessionMiddleware`` plus ``request.session.get("uid")`` does with that
  engine (load the session named by the ``sessionid`` cookie), written out
  in the view so that one handler serves all engines. ``cached_db`` is a
  warm local-memory cache hit; ``db`` a query on the benchmark database.

Rounds interleave the views; the overhead of a view is the median over
rounds of (view median − plain median) within the round, so machine noise
hits the baseline and the view alike. Prints a Markdown fragment.
"""

import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")

import bench_settings  # noqa: E402
from bench_db import ensure_postgres_database  # noqa: E402

ensure_postgres_database()

bench_settings.INSTALLED_APPS = [*bench_settings.INSTALLED_APPS, "django.contrib.sessions"]
bench_settings.ROOT_URLCONF = __name__
bench_settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
bench_settings.MIDDLEWARE = []

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends import cached_db, db, signed_cookies  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import path  # noqa: E402
from supertokens_jwt_ref import supertokens as reference_api  # noqa: E402

from tessera_django import supertokens as tessera_api  # noqa: E402

QUICK = "--quick" in sys.argv
ROUNDS = 3 if QUICK else 9
REQUESTS = 200 if QUICK else 3000
ENGINES = {"db": db, "cached_db": cached_db, "signed_cookies": signed_cookies}


def plain(request):
    return HttpResponse("ok")


def tessera(request):
    response = HttpResponse("ok")
    tessera_api.get_session(request, response, False)
    return response


def reference(request):
    response = HttpResponse("ok")
    reference_api.get_session(request, response, False)
    return response


def engine_view(name):
    store = ENGINES[name].SessionStore

    def view(request):
        session = store(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        if session.get("uid") is None:
            raise RuntimeError(f"{name}: the session did not load")
        return HttpResponse("ok")

    return view


urlpatterns = [
    path("plain", plain),
    path("tessera", tessera),
    path("reference", reference),
    *[path(f"django-{name}", engine_view(name)) for name in ENGINES],
]


def cookie_header(pairs):
    return "; ".join(f"{k}={v}" for k, v in pairs.items())


def session_cookies():
    """The Cookie header each view gets: the same browser holds a Tessera
    session, a reference-library session and one session per engine."""
    jar = {}
    for api, prefix in ((tessera_api, "t"), (reference_api, "r")):
        response = HttpResponse()
        api.create_new_session(response, 4242, {"role": "user"}, {"cart": []})
        jar[prefix] = {name: m.value for name, m in response.cookies.items()}
    for name, module in ENGINES.items():
        store = module.SessionStore()
        store["uid"] = 4242
        store.save()
        jar[name] = {settings.SESSION_COOKIE_NAME: store.session_key}
    return jar


def environ_for(route, jar):
    own = {
        "tessera": {k: jar["t"][k] for k in ("sAccessToken", "sIdRefreshToken")},
        "reference": {k: jar["r"][k] for k in ("sAccessToken", "sIdRefreshToken")},
    }
    engine = route.removeprefix("django-")
    cookies = own.get(route) or jar.get(engine) or {}
    return RequestFactory().get(f"/{route}", HTTP_COOKIE=cookie_header(cookies)).environ


def run(handler, environ, n):
    out = []
    status = []

    def start_response(s, headers, exc_info=None):
        status.append(s)

    for _ in range(n):
        env = dict(environ)
        t0 = time.perf_counter_ns()
        response = handler(env, start_response)
        out.append(time.perf_counter_ns() - t0)
        response.close()
    bad = [s for s in status if not s.startswith("200")]
    if bad:
        raise SystemExit(f"{environ['PATH_INFO']}: answered {bad[0]}")
    return statistics.median(out)


def main():
    call_command("migrate", run_syncdb=True, verbosity=0)
    handler = WSGIHandler()
    jar = session_cookies()
    routes = ["plain", "tessera", "reference", *[f"django-{n}" for n in ENGINES]]
    environs = {r: environ_for(r, jar) for r in routes}
    for r in routes:
        run(handler, environs[r], 50)  # warm up, and every route answers 200
    medians = {r: [] for r in routes}
    for i in range(ROUNDS):
        order = routes[i % len(routes) :] + routes[: i % len(routes)]
        for r in order:
            medians[r].append(run(handler, environs[r], REQUESTS))
    over = {
        r: statistics.median(m - p for m, p in zip(medians[r], medians["plain"]))
        for r in routes
        if r != "plain"
    }
    plain_ns = statistics.median(medians["plain"])
    lines = [
        "\n#### What checking a session adds to a Django request\n",
        f"Python {platform.python_version()}, Django {django.get_version()}, database "
        f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}. One `WSGIHandler` "
        f"(Django's request path, no middleware), {ROUNDS} interleaved rounds of {REQUESTS} "
        "requests per view; overhead = median over rounds of (view median − plain median). "
        "The Django engines' views do what `SessionMiddleware` and `request.session.get()` do "
        "(`cached_db`: a warm local-memory cache hit).\n",
        "| view | per request (median of rounds) | over the plain view |",
        "|---|---|---|",
        f"| plain | {plain_ns / 1000:.2f} µs | — |",
    ]
    labels = {
        "tessera": "tessera_django `get_session`",
        "reference": "reference library `get_session`",
        "django-db": "Django session, `db` engine",
        "django-cached_db": "Django session, `cached_db` engine",
        "django-signed_cookies": "Django session, `signed_cookies` engine",
    }
    for r in routes[1:]:
        lines.append(
            f"| {labels[r]} | {statistics.median(medians[r]) / 1000:.2f} µs | {over[r] / 1000:+.2f} µs |"
        )
    target = over["tessera"] <= 3000
    lines.append("")
    lines.append(
        f"tessera_django `get_session` over a plain view: {over['tessera'] / 1000:.2f} µs "
        f"(target ≤ 3 µs: {'met' if target else '**missed**'})."
    )
    lines.append(f"<!-- django-overhead tessera_ns={over['tessera']:.0f} -->\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
