"""Side-by-side benchmark of the reference library's four hot operations in Django.

    python bench_django.py [--quick] [--calls N] [--rounds R]

Implementations (each one a module with the reference library's API):

* ``reference``: ``supertokens_jwt_ref.supertokens`` from PyPI
  (``supertokens-jwt-ref==2.0.0``), the reference library;
* ``tessera_django``: ``tessera_django.supertokens`` (crates/tessera-python),
  measured when it is installed in this environment, else reported as not
  measured.

Operations, identical for every implementation:

* ``create_new_session(response, user_id, {"role": "user"}, {"cart": []})``
* ``get_session(request, response, True)`` on a valid access token with the
  anti-CSRF header (no database access in either library);
* ``refresh_session(request, response)``, presenting each time the refresh
  token that the previous call returned (the rotation a client performs:
  each call reads the row and promotes the presented token);
* ``revoke_session(session_handle)`` on the handles made by the create phase.

Requests are built with ``django.test.RequestFactory`` and responses are
``django.http.HttpResponse``; both are made before the clock starts, so
only the library call is timed (Django's own lazy cookie parsing of
``request.COOKIES`` happens inside the call, for both). Rounds alternate
between implementations (A, B, A, B, ...) so machine noise hits both alike;
we report the median and minimum latency of every call, and the ratio of
medians. ``djangorestframework-simplejwt``'s access-token verification
(``JWTAuthentication.get_validated_token`` of the ``Authorization`` header,
no database) is measured the same way, for context.

Prints a Markdown fragment on stdout.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from http.cookies import SimpleCookie

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench_settings")


from bench_db import ensure_postgres_database  # noqa: E402

ensure_postgres_database()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

call_command("migrate", run_syncdb=True, verbosity=0)

from supertokens_jwt_ref import supertokens as reference_api  # noqa: E402

try:
    from tessera_django import supertokens as tessera_api  # noqa: E402

    TESSERA_ERROR = None
except Exception as e:  # ImportError, or a native module that fails to load
    tessera_api = None
    TESSERA_ERROR = f"{type(e).__name__}: {e}"

FACTORY = RequestFactory()


def cookies_of(response):
    """name -> value of the cookies a response sets."""
    return {name: morsel.value for name, morsel in response.cookies.items()}


def handle_of(session):
    """The session handle. The reference's Session keeps it private
    (``__session_handle``, no getter), so read its mangled name there."""
    getter = getattr(session, "get_handle", None)
    return getter() if getter is not None else session._Session__session_handle


def anti_csrf_of(response):
    return response.get("anti-csrf")


def cookie_header(pairs):
    return "; ".join(f"{k}={v}" for k, v in pairs)


class Impl:
    def __init__(self, name, api):
        self.name = name
        self.api = api
        self.users = 0

    def next_user(self):
        self.users += 1
        # Integer ids, as most Django projects use.
        return 1_000_000 * (1 if self.name == "reference" else 2) + self.users

    def login(self):
        """A session as a browser holds it: (handle, cookies, anti-csrf)."""
        response = HttpResponse()
        session = self.api.create_new_session(
            response, self.next_user(), {"role": "user"}, {"cart": []}
        )
        return handle_of(session), cookies_of(response), anti_csrf_of(response)


def timed_calls(n, prepare, call):
    """Runs ``call(*prepare(i))`` n times; returns per-call nanoseconds.
    Only ``call`` is inside the clock."""
    out = []
    for i in range(n):
        args = prepare(i)
        t0 = time.perf_counter_ns()
        call(*args)
        out.append(time.perf_counter_ns() - t0)
    return out


def bench_create(impl, n, handles):
    def prepare(_i):
        return (HttpResponse(), impl.next_user())

    def call(response, user):
        s = impl.api.create_new_session(response, user, {"role": "user"}, {"cart": []})
        handles.append(handle_of(s))

    return timed_calls(n, prepare, call)


def bench_get(impl, n, state):
    _, cookies, csrf = state["login"]
    header = cookie_header(
        [("sAccessToken", cookies["sAccessToken"]), ("sIdRefreshToken", cookies["sIdRefreshToken"])]
    )

    def prepare(_i):
        request = FACTORY.get("/api/resource", HTTP_COOKIE=header, HTTP_ANTI_CSRF=csrf)
        return (request, HttpResponse())

    def call(request, response):
        impl.api.get_session(request, response, True)

    return timed_calls(n, prepare, call)


def bench_refresh(impl, n, state):
    chain = state["chain"]  # [refresh token, id refresh token], updated in place

    def prepare(_i):
        header = cookie_header([("sRefreshToken", chain[0]), ("sIdRefreshToken", chain[1])])
        return (FACTORY.post("/refresh/", HTTP_COOKIE=header), HttpResponse())

    def call(request, response):
        impl.api.refresh_session(request, response)
        c = cookies_of(response)
        chain[0] = c["sRefreshToken"]
        chain[1] = c["sIdRefreshToken"]

    return timed_calls(n, prepare, call)


def bench_revoke(impl, n, handles):
    todo = handles[:n]
    del handles[:n]

    def prepare(i):
        return (todo[i],)

    def call(handle):
        if not impl.api.revoke_session(handle):
            raise AssertionError("revoke_session found no row")

    return timed_calls(len(todo), prepare, call)


def commit_floor_setup():
    """The physical floor of a write: one durable single-row INSERT, then its
    DELETE, each an autocommit statement on Django's connection."""
    with connection.cursor() as c:
        c.execute("CREATE TABLE IF NOT EXISTS bench_commit_floor (k VARCHAR(64) PRIMARY KEY, v TEXT)")
    counter = [0]

    def prepare(_i):
        counter[0] += 1
        return (f"k{time.time_ns()}-{counter[0]}",)

    def call(key):
        with connection.cursor() as c:
            c.execute("INSERT INTO bench_commit_floor (k, v) VALUES (%s, %s)", [key, "x" * 200])

    return prepare, call


def simplejwt_setup():
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken()
    token["user_id"] = 1
    token["role"] = "user"
    raw = str(token)
    auth = JWTAuthentication()

    def prepare(_i):
        return (FACTORY.get("/api/resource", HTTP_AUTHORIZATION=f"Bearer {raw}"),)

    def call(request):
        header = auth.get_header(request)
        auth.get_validated_token(auth.get_raw_token(header))

    return prepare, call, len(raw)


OPS = ["create_new_session", "get_session", "refresh_session", "revoke_session"]


def fmt_us(ns):
    return f"{ns / 1000:.1f} µs" if ns < 10_000_000 else f"{ns / 1e6:.1f} ms"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--calls", type=int, default=None, help="calls per operation per round")
    p.add_argument("--rounds", type=int, default=None)
    args = p.parse_args()
    calls = args.calls or (5 if args.quick else 200)
    rounds = args.rounds or (1 if args.quick else 7)
    get_calls = calls * (1 if args.quick else 10)

    impls = [Impl("reference", reference_api)]
    if tessera_api is not None:
        impls.append(Impl("tessera_django", tessera_api))

    samples = {(i.name, op): [] for i in impls for op in OPS}
    round_medians = {(i.name, op): [] for i in impls for op in OPS}
    jwt_samples = []
    state = {}
    handles = {}
    for impl in impls:
        # Warm up: keys loaded, pools and connections open, code paths hot.
        login = impl.login()
        state[impl.name] = {"login": login, "chain": [login[1]["sRefreshToken"], login[1]["sIdRefreshToken"]]}
        handles[impl.name] = []
        bench_create(impl, 3, handles[impl.name])
        bench_get(impl, 3, state[impl.name])
        bench_refresh(impl, 3, state[impl.name])
        bench_revoke(impl, 3, handles[impl.name])
    floor_prepare, floor_call = commit_floor_setup()
    timed_calls(3, floor_prepare, floor_call)
    floor_samples = []
    jwt_prepare, jwt_call, jwt_len = simplejwt_setup()
    timed_calls(3, jwt_prepare, jwt_call)

    for _ in range(rounds):
        for impl in impls:
            st, hs = state[impl.name], handles[impl.name]
            for op, run in [
                ("create_new_session", lambda: bench_create(impl, calls, hs)),
                ("get_session", lambda: bench_get(impl, get_calls, st)),
                ("refresh_session", lambda: bench_refresh(impl, calls, st)),
                ("revoke_session", lambda: bench_revoke(impl, calls, hs)),
            ]:
                xs = run()
                samples[(impl.name, op)].extend(xs)
                round_medians[(impl.name, op)].append(statistics.median(xs))
        jwt_samples.extend(timed_calls(get_calls, jwt_prepare, jwt_call))
        floor_samples.extend(timed_calls(calls, floor_prepare, floor_call))

    db = connection.vendor
    if db == "postgresql":
        with connection.cursor() as c:
            c.execute("SELECT current_setting('server_version'), current_setting('synchronous_commit')")
            ver, sync = c.fetchone()
        db_note = f"PostgreSQL {ver} (database `{settings.DATABASES['default']['NAME']}`), synchronous_commit={sync} for both"
    else:
        db_note = f"SQLite file `{settings.DATABASES['default']['NAME']}` for both"

    import rest_framework
    import rest_framework_simplejwt

    out = []
    out.append("\n### Django: tessera_django against the reference (supertokens-jwt-ref 2.0.0)\n")
    out.append(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"djangorestframework {rest_framework.__version__}, "
        f"djangorestframework-simplejwt {getattr(rest_framework_simplejwt, '__version__', '?')}. "
        f"Database: {db_note}. {rounds} round(s), alternating implementations; "
        f"{calls} calls per operation per round ({get_calls} for get_session). "
        "Requests from `RequestFactory`, responses `HttpResponse`, built outside the timed call.\n"
    )
    header = "| operation | reference median | reference min |"
    sep = "|---|---|---|"
    if tessera_api is not None:
        header += " tessera_django median | tessera_django min | speed-up (median) | target ≥ 5× |"
        sep += "---|---|---|---|"
    out.append(header)
    out.append(sep)
    numbers = []
    for op in OPS:
        r = samples[("reference", op)]
        row = f"| {op} | {fmt_us(statistics.median(r))} | {fmt_us(min(r))} |"
        if tessera_api is not None:
            t = samples[("tessera_django", op)]
            ratio = statistics.median(r) / statistics.median(t)
            row += (
                f" {fmt_us(statistics.median(t))} | {fmt_us(min(t))} | {ratio:.1f}× | "
                f"{'met' if ratio >= 5 else '**missed**'} |"
            )
            numbers.append(f"{op}_ratio={ratio:.2f}")
        numbers.append(f"{op}_reference_median_ns={statistics.median(r):.0f}")
        out.append(row)
    out.append(
        f"| *simplejwt: verify an access token ({jwt_len} chars) from the Authorization header* "
        f"| {fmt_us(statistics.median(jwt_samples))} | {fmt_us(min(jwt_samples))} |"
        + (" | | | |" if tessera_api is not None else "")
    )
    out.append(
        "| *floor: one durable single-row INSERT through Django's connection (autocommit)* "
        f"| {fmt_us(statistics.median(floor_samples))} | {fmt_us(min(floor_samples))} |"
        + (" | | | |" if tessera_api is not None else "")
    )
    out.append("")
    if tessera_api is None:
        out.append(
            "**tessera_django: not measured in this run** (the package is not installed in the "
            f"benchmark environment: {TESSERA_ERROR}). The harness runs it side by side as soon "
            "as `import tessera_django` works.\n"
        )
    numbers.append(f"reference_get_session_median_ns={statistics.median(samples[('reference', 'get_session')]):.0f}")
    out.append(f"<!-- django-numbers {' '.join(numbers)} -->\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
