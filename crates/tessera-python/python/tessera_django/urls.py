"""URL patterns: the current SDK's API (``CURRENT_SDK``) and the JWKS.

The current SDK's API::

    from tessera_django.urls import current_sdk_urlpatterns

    urlpatterns = [
        ...,
        *current_sdk_urlpatterns(),
    ]

gives ``<API_BASE_PATH>/session/refresh`` (:func:`tessera_django.views.refresh`)
and ``<API_BASE_PATH>/signout`` (:func:`tessera_django.views.signout`) at the
paths the SDK calls (``API_BASE_PATH`` defaults to ``/auth``, the SDK's own
default), or nothing when ``CURRENT_SDK`` is off. The paths are read from
``settings.SUPER_TOKENS`` when the URLconf is imported. ``manage.py check``
warns (``tessera_django.W005``) when nothing answers at the refresh path.
"""

import re
from typing import Any, List

from django.urls import re_path

from . import conf, views

__all__ = ["current_sdk_urlpatterns", "jwks_urlpatterns"]

#: Where :func:`jwks_urlpatterns` serves the key set (the well-known path
#: OpenID Connect providers use, as tessera-axum's ``jwks_router``).
JWKS_PATH = ".well-known/jwks.json"


def current_sdk_urlpatterns() -> List[Any]:
    """The current SDK's refresh and sign-out routes, or ``[]``."""
    paths = conf.current_sdk_paths(conf.load().core)
    if paths is None:
        return []
    refresh, signout = paths
    # Literal paths (no converters), relative to the URLconf's root.
    return [
        re_path(r"^" + re.escape(refresh.lstrip("/")) + r"$", views.refresh, name="tessera-refresh"),
        re_path(r"^" + re.escape(signout.lstrip("/")) + r"$", views.signout, name="tessera-signout"),
    ]


def jwks_urlpatterns() -> List[Any]:
    """``GET /.well-known/jwks.json`` → :func:`tessera_django.views.jwks`
    (``404`` while ``ACCESS_TOKEN_ALGORITHM`` is ``"HS256"``)."""
    return [re_path(r"^" + re.escape(JWKS_PATH) + r"$", views.jwks, name="tessera-jwks")]
