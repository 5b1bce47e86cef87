"""Minimal Django settings for the side-by-side benchmark.

Both libraries run in this one Django project, on one database:

* ``BENCH_DB=postgres`` (default): the PostgreSQL database named by
  ``BENCH_PG_NAME`` (default ``tessera_bench_django``) on
  ``BENCH_PG_HOST``/``BENCH_PG_PORT`` as ``BENCH_PG_USER``; created by the
  harness if missing. Server defaults apply to both libraries alike
  (``synchronous_commit = on``: every commit is flushed before it returns).
* ``BENCH_DB=sqlite``: a file (``BENCH_SQLITE_PATH``), also shared.
"""

import os

SECRET_KEY = "benchmark-only-not-a-secret-" + "x" * 32
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "supertokens_jwt_ref",
]
try:  # tessera_django joins when it is installed in this environment.
    import tessera_django  # noqa: F401

    INSTALLED_APPS.append("tessera_django")
except ImportError:
    pass

if os.environ.get("BENCH_DB", "postgres") == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE_PATH", "/tmp/tessera-bench-django.sqlite"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("BENCH_PG_NAME", "tessera_bench_django"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("BENCH_PG_PASSWORD", ""),
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            # One persistent connection, as a long-running worker keeps.
            "CONN_MAX_AGE": None,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# The reference library's settings, identical for both libraries (the reference library's defaults,
# except the cookie domain, which is irrelevant to timing).
SUPER_TOKENS = {
    "ACCESS_TOKEN_VALIDITY": 3600,
    "ANTI_CSRF_ENABLE": True,
    "ACCESS_TOKEN_ENABLE_BLACKLISTING": False,
    "REFRESH_TOKEN_VALIDITY": 2400,
    "REFRESH_TOKEN_PATH": "refresh/",
    "COOKIE_SECURE": True,
}

SIMPLE_JWT = {"ALGORITHM": "HS256", "SIGNING_KEY": SECRET_KEY}
