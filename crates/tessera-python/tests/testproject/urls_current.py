"""The test project's URLconf with the current SDK's API routed (tests that
set SUPER_TOKENS["CURRENT_SDK"] use it with override_settings(ROOT_URLCONF=...);
the patterns are read when this module is first imported, under the
overridden settings)."""

from django.urls import path

from tessera_django.urls import current_sdk_urlpatterns

from . import views
from .urls import urlpatterns as reference_urlpatterns

urlpatterns = [
    *reference_urlpatterns,
    path("sign-in", views.sign_in),
    path("counter", views.counter),
    *current_sdk_urlpatterns(),
]
