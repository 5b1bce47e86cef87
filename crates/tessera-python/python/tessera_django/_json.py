"""JSON across the boundary: payloads and session info travel as JSON text."""

import json
from typing import Any

from .exceptions import SuperTokensGeneralException


def dumps(value: Any, what: str) -> str:
    """``value`` as compact JSON; General error if it is not JSON data."""
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise SuperTokensGeneralException(
            f"{what} must be JSON data (dict, list, str, int, float, bool or None): {e}"
        ) from e
