"""``manage.py tessera_sessions USER_ID``: lists a user's live sessions
(handle, created, refresh expiry; UTC). Prints no tokens or session data."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tessera_django import _state
from tessera_django.exceptions import SuperTokensException

from ._users import add_user_arguments, user_id_of, when


class Command(BaseCommand):
    help = "List a user's live Tessera sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = user_id_of(options)
        try:
            rows = _state.get().list_sessions_for_user(user_id)
        except SuperTokensException as e:
            raise CommandError(str(e)) from e
        for handle, created, expires in rows:
            self.stdout.write(f"{handle}  created {when(created)}  expires {when(expires)}")
        self.stdout.write(f"{len(rows)} session(s) for user {user_id!r}")
