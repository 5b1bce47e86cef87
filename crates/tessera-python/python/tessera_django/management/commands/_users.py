"""What the session commands share: the user id argument and time display."""

import datetime
from typing import Any, Union

from django.core.management.base import CommandParser


def add_user_arguments(parser: CommandParser) -> None:
    parser.add_argument("user_id", help="The user id given to create_new_session.")
    parser.add_argument(
        "--int",
        action="store_true",
        dest="int_id",
        help="The user id is an integer (create_new_session was given an int).",
    )


def user_id_of(options: Any) -> Union[str, int]:
    from django.core.management.base import CommandError

    user_id: str = options["user_id"]
    if options["int_id"]:
        try:
            return int(user_id)
        except ValueError:
            raise CommandError(f"--int: {user_id!r} is not an integer") from None
    return user_id


def when(ms: int) -> str:
    """Milliseconds since the epoch as an ISO 8601 UTC time."""
    moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return moment.isoformat(timespec="seconds")
