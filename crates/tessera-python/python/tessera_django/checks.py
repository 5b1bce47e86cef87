"""System checks (``manage.py check``): bad ``SUPER_TOKENS`` values are
reported at startup instead of on the first request."""

from typing import Any, List

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from . import _native, conf, db
from .exceptions import SuperTokensGeneralException

AUTH_CLASS = "tessera_django.authentication.SuperTokensAuthentication"
MIDDLEWARE = "tessera_django.middleware.SuperTokensMiddleware"


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> List[Any]:
    errors: List[Any] = []
    try:
        s = conf.load()
        _native.validate_config(s.core, key_function=s.key_function)
    except SuperTokensGeneralException as e:
        return [Error(str(e), hint="Fix settings.SUPER_TOKENS.", id="tessera_django.E001")]
    if s.database_url is None:
        if s.database_alias not in settings.DATABASES:
            errors.append(
                Error(
                    f"SUPER_TOKENS: DATABASE_ALIAS {s.database_alias!r} is not in DATABASES.",
                    id="tessera_django.E002",
                )
            )
        else:
            try:
                db.url_for_alias(s.database_alias)
            except SuperTokensGeneralException as e:
                errors.append(Error(str(e), id="tessera_django.E003"))
    drf = getattr(settings, "REST_FRAMEWORK", {}) or {}
    if AUTH_CLASS in drf.get("DEFAULT_AUTHENTICATION_CLASSES", ()) and MIDDLEWARE not in getattr(
        settings, "MIDDLEWARE", ()
    ):
        errors.append(
            Warning(
                f"{AUTH_CLASS} is used without {MIDDLEWARE}: cookies set while "
                "authenticating (a new access token after a refresh, cleared cookies) are lost.",
                hint=f"Add {MIDDLEWARE!r} to MIDDLEWARE.",
                id="tessera_django.W001",
            )
        )
    return errors
