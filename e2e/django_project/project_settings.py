"""Settings of the Django project the browser tests run the current SDK
(supertokens-website 20.x) against (e2e/tests/sdk20.test.mjs with
E2E_DJANGO_PYTHON). Not for production: plain HTTP, 2-second access
tokens, test-only inspection routes."""

import os

SECRET_KEY = "e2e-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "project_urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "tessera_django"]
MIDDLEWARE = ["tessera_django.middleware.SuperTokensMiddleware"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["E2E_DJANGO_DB"],
    }
}
USE_TZ = True
SUPER_TOKENS = {
    "ACCESS_TOKEN_VALIDITY": float(os.environ.get("E2E_ACCESS_TOKEN_SECS", "2")),
    "COOKIE_DOMAIN": None,  # host-only cookies on http://127.0.0.1
    "COOKIE_SECURE": False,
    "CURRENT_SDK": {"API_BASE_PATH": "/auth"},
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"tessera_django": {"handlers": ["stderr"], "level": "ERROR"}},
}
