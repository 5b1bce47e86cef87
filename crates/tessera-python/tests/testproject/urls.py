from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login", views.login),
    path("login-cached", views.login_cached),
    path("devices/login", views.device_login),
    path("devices/<str:user_id>", views.device_list),
    path("async/devices/login", views.adevice_login),
    path("async/devices/<str:user_id>", views.adevice_list),
    path("refresh-converged/", views.refresh_converged),
    path("protected", views.protected),
    path("protected-manual", views.protected_manual),
    path("refresh/", views.refresh),
    path("session-info", views.session_info),
    path("logout", views.logout),
    path("options", views.options),
    path("users/<str:user_id>/sessions", views.user_sessions),
    path("sessions/<str:handle>", views.session_by_handle),
    path("async/login", views.alogin),
    path("async/protected", views.aprotected),
    path("async/refresh/", views.arefresh),
    path("async/logout", views.alogout),
    path("async/users/<str:user_id>/sessions", views.auser_sessions),
    path("async/sessions/<str:handle>", views.asession_by_handle),
    path("async/sleep", views.asleep),
    path("api/login", views.ApiLogin.as_view()),
    path("api/refresh", views.ApiRefresh.as_view()),
    path("api/me", views.ApiMe.as_view()),
    path("api/public", views.ApiPublic.as_view()),
]
