"""Settings of the test project. ``TESSERA_DJANGO_DB`` picks the database:

* ``sqlite`` (default): ``NAME = ":memory:"``, Django's usual test setting, so
  Tessera uses its own in-memory database;
* ``sqlite-file``: a SQLite file (``TESSERA_DJANGO_SQLITE_PATH``), and a file
  test database beside it;
* ``postgres``: ``TESSERA_TEST_POSTGRES_URL`` (default
  ``postgres://postgres@127.0.0.1:5432/test``);
* ``mysql``: ``TESSERA_TEST_MYSQL_URL`` (default
  ``mysql://root@127.0.0.1:3306/test``), through PyMySQL.

For PostgreSQL and MySQL the test database is ``tessera_django_pytest``
(``TESSERA_DJANGO_TEST_DB_NAME`` overrides it), created and dropped by
pytest-django. ``TESSERA_DJANGO_DB_NAME`` overrides the main database's name
(the migration tests point ``manage.py migrate`` at a fresh database with it).
"""

import os
from urllib.parse import unquote, urlsplit

BACKEND = os.environ.get("TESSERA_DJANGO_DB", "sqlite")
TEST_DB_NAME = os.environ.get("TESSERA_DJANGO_TEST_DB_NAME", "tessera_django_pytest")


def _server(url: str, engine: str) -> dict:
    parts = urlsplit(url)
    return {
        "ENGINE": engine,
        "NAME": os.environ.get("TESSERA_DJANGO_DB_NAME") or parts.path.lstrip("/") or "test",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "TEST": {"NAME": TEST_DB_NAME},
    }


if BACKEND == "sqlite":
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
elif BACKEND == "sqlite-file":
    _path = os.environ.get("TESSERA_DJANGO_SQLITE_PATH", "tessera-django.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _path,
            # A file test database too (Django's default would be in memory).
            "TEST": {"NAME": os.path.join(os.path.dirname(os.path.abspath(_path)), "test_" + os.path.basename(_path))},
        }
    }
elif BACKEND == "postgres":
    DATABASES = {
        "default": _server(
            os.environ.get("TESSERA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
            "django.db.backends.postgresql",
        )
    }
elif BACKEND == "mysql":
    # PyMySQL is pure Python: no MySQL client headers needed to install it.
    import pymysql

    pymysql.install_as_MySQLdb()
    DATABASES = {
        "default": _server(
            os.environ.get("TESSERA_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
            "django.db.backends.mysql",
        )
    }
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
    DATABASES["default"]["TEST"]["CHARSET"] = "utf8mb4"
else:
    raise RuntimeError(f"TESSERA_DJANGO_DB must be sqlite, sqlite-file, postgres or mysql, not {BACKEND!r}")

SECRET_KEY = "tessera-django-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "tessera_django",
]

# Django's own session, auth and messages middleware serve the admin
# (tests/test_admin.py); Tessera's sessions do not use them.
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tessera_django.middleware.SuperTokensMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

ROOT_URLCONF = "testproject.urls"
# The live server serves static files under this prefix (none here).
STATIC_URL = "static/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tessera_django.authentication.SuperTokensAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
}

# The reference library's defaults (tests override what they need).
SUPER_TOKENS = {}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"tessera_django": {"handlers": ["null"], "propagate": True}},
}
