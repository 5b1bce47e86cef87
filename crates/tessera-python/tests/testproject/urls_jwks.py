"""The test project's URLconf with the JWKS routed (tests/test_jwks.py)."""

from tessera_django.urls import jwks_urlpatterns

from .urls import urlpatterns as reference_urlpatterns

urlpatterns = [*reference_urlpatterns, *jwks_urlpatterns()]
