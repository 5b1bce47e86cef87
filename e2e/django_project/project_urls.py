from django.urls import path

from tessera_django.urls import current_sdk_urlpatterns

import project_views as views

urlpatterns = [
    path("sdk20", views.page20),
    path("sdk20.js", views.bundle20),
    path("login", views.login),
    path("api/user", views.user),
    path("api/protected", views.protected),
    path("test/handles", views.handles),
    path("test/revoke", views.revoke),
    *current_sdk_urlpatterns(),
]
