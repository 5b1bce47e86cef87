"""The sessions admin: a user's live sessions (handle, created, last active,
refresh expiry, device label and user agent, and the client address when
``RECORD_CLIENT_ADDRESS`` recorded it) and a revoke action, at ``/admin/tessera_django/tesserasession/``.

Sessions are looked up by user (the id given to ``create_new_session``;
tick "integer id" for an int): the core has no query over every user's
sessions, and a list of everyone's sessions is rarely what an operator
needs. Seeing them needs the model's view permission, revoking its delete
permission. Tokens and session data are never shown.
"""

import datetime
from typing import Any, Dict, List, Optional, Union

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path

from . import _state
from .exceptions import SuperTokensException
from .models import TesseraSession


def _when(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


@admin.register(TesseraSession)
class TesseraSessionAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> List[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path("", self.admin_site.admin_view(self.changelist_view), name="%s_%s_changelist" % info),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: Optional[Dict[str, Any]] = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        raw_user = source.get("user_id", "").strip()
        integer = bool(source.get("int"))
        user_id: Union[str, int, None] = None
        rows: List[Dict[str, Any]] = []
        if raw_user:
            try:
                user_id = int(raw_user) if integer else raw_user
            except ValueError:
                messages.error(request, "The user id is not an integer.")
        if user_id is not None and request.method == "POST":
            if not self.has_delete_permission(request):
                raise PermissionDenied
            self._revoke(request, user_id, request.POST.getlist("handle"))
            query = f"?user_id={raw_user}" + ("&int=1" if integer else "")
            return HttpResponseRedirect(request.path + query.replace(" ", "%20"))
        if user_id is not None:
            try:
                rows = [
                    {
                        "handle": row["session_handle"],
                        "created": _when(row["created_at"]),
                        "last_active": _when(row["last_active_at"]),
                        "expires": _when(row["expires_at"]),
                        "device": " / ".join(
                            v for v in (row["device_label"], row["user_agent"]) if v
                        ),
                        "client_address": row["client_address"] or "",
                    }
                    for row in _state.get().list_sessions_for_user(user_id)
                ]
            except SuperTokensException as e:
                messages.error(request, f"Could not list the sessions: {e}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Sessions by user",
            "user_id": raw_user,
            "integer": integer,
            "searched": user_id is not None,
            "rows": rows,
            "can_revoke": self.has_delete_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/tessera_django/sessions_by_user.html", context)

    def _revoke(self, request: HttpRequest, user_id: Union[str, int], handles: List[str]) -> None:
        """The revoke action: the ticked sessions of the user, or all of
        them when "revoke all" was pressed. Handles that are not the user's
        are refused (a crafted form cannot revoke someone else's)."""
        try:
            manager = _state.get()
            if "revoke_all" in request.POST:
                count = manager.revoke_all_sessions_for_user(user_id)
            else:
                mine = set(manager.get_all_session_handles_for_user(user_id))
                chosen = [h for h in handles if h in mine]
                if len(chosen) != len(handles):
                    messages.warning(request, "Some selected sessions are not this user's; skipped.")
                count = sum(manager.revoke_session(h) for h in chosen)
        except SuperTokensException as e:
            messages.error(request, f"Could not revoke: {e}")
            return
        messages.success(request, f"Revoked {count} session(s) of user {user_id!r}.")
