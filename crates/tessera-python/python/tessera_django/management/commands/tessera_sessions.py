"""``manage.py tessera_sessions USER_ID``: lists a user's live sessions
(handle, created, last active, refresh expiry in UTC; the device label and
user agent when recorded). Prints no tokens, session data or client
address."""

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
        for row in rows:
            line = (
                f"{row['session_handle']}  created {when(row['created_at'])}"
                f"  last active {when(row['last_active_at'])}  expires {when(row['expires_at'])}"
            )
            if row["device_label"]:
                line += f"  label {row['device_label']!r}"
            if row["user_agent"]:
                line += f"  user agent {row['user_agent']!r}"
            self.stdout.write(line)
        self.stdout.write(f"{len(rows)} session(s) for user {user_id!r}")
