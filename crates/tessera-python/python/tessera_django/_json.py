"""JSON across the boundary: payloads and session info travel as JSON text."""

import json
from typing import Any

from . import _native
from .exceptions import SuperTokensGeneralException


def dumps(value: Any, what: str) -> str:
    """``value`` as compact JSON; General error if it is not JSON data."""
    try:
        return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except RecursionError as e:
        # Deeper than Python's own recursion limit; the native module says
        # the same for anything deeper than its limit.
        raise SuperTokensGeneralException(
            f"{what} is nested too deeply for Python's json module; at most "
            f"{_native.MAX_JSON_DEPTH} levels of lists and dicts are supported",
            kind="invalid_argument",
        ) from e
    except (TypeError, ValueError) as e:
        raise SuperTokensGeneralException(
            f"{what} must be JSON data (dict, list, str, int, float, bool or None): {e}",
            kind="invalid_argument",
        ) from e
