"""``manage.py tessera_revoke USER_ID [--handle HANDLE ...]``: revokes all of a
user's sessions, or only the given ones (which must be that user's). Their
access tokens stay valid until they expire unless blacklisting is on."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tessera_django import _state
from tessera_django.exceptions import SuperTokensException

from ._users import add_user_arguments, user_id_of


class Command(BaseCommand):
    help = "Revoke a user's Tessera sessions (all, or those given with --handle)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_user_arguments(parser)
        parser.add_argument(
            "--handle",
            action="append",
            default=[],
            help="Revoke only this session (repeatable).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_id = user_id_of(options)
        try:
            manager = _state.get()
            if not options["handle"]:
                count = manager.revoke_all_sessions_for_user(user_id)
            else:
                mine = set(manager.get_all_session_handles_for_user(user_id))
                strangers = [h for h in options["handle"] if h not in mine]
                if strangers:
                    raise CommandError(
                        f"not sessions of user {user_id!r}: {', '.join(map(repr, strangers))}"
                    )
                count = sum(manager.revoke_session(h) for h in options["handle"])
        except SuperTokensException as e:
            raise CommandError(str(e)) from e
        self.stdout.write(f"Revoked {count} session(s) of user {user_id!r}")
