"""``manage.py remove_old_tokens``: deletes expired sessions (the reference library's
command name). Safe to run while serving: each batch is its own short
transaction. Run it from cron."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tessera_django import _state
from tessera_django.exceptions import SuperTokensException


class Command(BaseCommand):
    help = "Remove expired Tessera sessions from the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows deleted per transaction (default 1000).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Only count the expired sessions.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            manager = _state.get()
            if options["dry_run"]:
                count = manager.count_expired_sessions()
                self.stdout.write(f"{count} expired session(s) would be removed")
            else:
                count = manager.remove_expired_sessions(batch_size)
                self.stdout.write(f"Removed {count} expired session(s)")
        except SuperTokensException as e:
            raise CommandError(str(e)) from e
