"""Writing the core's cookies and headers to Django responses.

The Rust core records what it sets (``set_cookie``, ``set_header``,
``append_header``) and replays it onto one of these writers once it returns,
with the GIL held. Any object with ``set_cookie``, ``__setitem__``,
``__getitem__`` and ``has_header`` works: ``django.http.HttpResponse`` and its
subclasses, including Django REST framework's ``Response``.
"""

from typing import Any, List, Optional, Tuple

from .exceptions import SuperTokensGeneralException

__all__ = ["ResponseWriter", "PendingResponse", "writer_for", "ensure_no_store"]


class ResponseWriter:
    """Applies the core's operations to a Django response."""

    __slots__ = ("response",)

    def __init__(self, response: Any) -> None:
        self.response = response

    def set_cookie(
        self,
        name: str,
        value: str,
        expires: str,
        path: str,
        domain: Optional[str],
        secure: bool,
        httponly: bool,
        samesite: str,
    ) -> None:
        # `expires` is the core's date text, so the cookie's Expires is the
        # token's expiry exactly (Thu, 01 Jan 1970 00:00:00 GMT when
        # clearing). A datetime would make Django send Max-Age and a
        # recomputed Expires instead.
        self.response.set_cookie(
            name,
            value,
            expires=expires,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    def set_header(self, name: str, value: str) -> None:
        self.response[name] = value

    def append_header(self, name: str, value: str) -> None:
        """Adds ``value`` to a comma-separated list header (such as
        ``Access-Control-Expose-Headers``) unless it is already listed."""
        if self.response.has_header(name):
            existing = self.response[name]
            listed = [item.strip().lower() for item in existing.split(",")]
            if value.lower() in listed:
                return
            if existing.strip():
                value = f"{existing}, {value}"
        self.response[name] = value


class PendingResponse:
    """Records the operations for a response that does not exist yet.

    The DRF authentication class verifies the session before the view has
    built its response; what the core sets then (a new access token on the
    first request after a refresh, cleared cookies) is recorded here and
    written to the final response by :class:`tessera_django.middleware.SuperTokensMiddleware`.
    """

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: List[Tuple[str, Tuple[Any, ...]]] = []

    def set_cookie(self, *args: Any) -> None:
        self.ops.append(("set_cookie", args))

    def set_header(self, *args: Any) -> None:
        self.ops.append(("set_header", args))

    def append_header(self, *args: Any) -> None:
        self.ops.append(("append_header", args))

    def apply_to(self, response: Any) -> None:
        writer = ResponseWriter(response)
        for method, args in self.ops:
            getattr(writer, method)(*args)


def writer_for(response: Any) -> Any:
    """The writer for ``response``; General error if it is not a response."""
    if isinstance(response, (ResponseWriter, PendingResponse)):
        return response
    if not (hasattr(response, "set_cookie") and hasattr(response, "has_header")):
        raise SuperTokensGeneralException(
            "response must be a django.http.HttpResponse (or a subclass such as "
            f"rest_framework.response.Response), not {type(response).__name__}",
            kind="invalid_argument",
        )
    return ResponseWriter(response)


def _directive_names(value: str) -> List[str]:
    return [item.split("=", 1)[0].strip().lower() for item in value.split(",")]


def ensure_no_store(response: Any) -> None:
    """Adds ``no-store`` to the response's ``Cache-Control`` directives unless
    it is there. Nothing else is touched, so a stricter value the view set
    (``private``, ``no-cache``, ``max-age=0``) stays, and a weaker one
    (``public, max-age=60``) is overridden by ``no-store``, which forbids
    storing the response at all."""
    if response.has_header("Cache-Control"):
        existing = response["Cache-Control"]
        if "no-store" in _directive_names(existing):
            return
        if existing.strip():
            response["Cache-Control"] = f"{existing}, no-store"
            return
    response["Cache-Control"] = "no-store"
