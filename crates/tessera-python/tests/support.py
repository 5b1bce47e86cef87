"""Helpers shared by the tests."""

from http.cookies import Morsel
from typing import Dict, Optional

from django.http import HttpResponse
from django.test import RequestFactory

ACCESS = "sAccessToken"
REFRESH = "sRefreshToken"
ID_REFRESH = "sIdRefreshToken"
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def cookies(response: HttpResponse) -> Dict[str, Morsel]:
    """The cookies a response sets, by name."""
    return dict(response.cookies.items())


def values(response: HttpResponse) -> Dict[str, str]:
    return {name: morsel.value for name, morsel in response.cookies.items()}


def request(
    jar: Dict[str, str],
    method: str = "post",
    path: str = "/",
    anti_csrf: Optional[str] = None,
    **extra,
):
    """A Django request carrying the cookies in ``jar`` and, if given, the
    ``anti-csrf`` header (set as Django's RequestFactory sets headers:
    ``HTTP_ANTI_CSRF``)."""
    factory = RequestFactory()
    if anti_csrf is not None:
        extra["HTTP_ANTI_CSRF"] = anti_csrf
    req = getattr(factory, method)(path, **extra)
    for name, value in jar.items():
        req.COOKIES[name] = value
    return req


def assert_cleared(response: HttpResponse, domain: str = "localhost") -> None:
    """The three session cookies cleared as the protocol says: empty value,
    expiry in 1970, the paths and domain they were set with; and
    ``id-refresh-token: remove``."""
    jar = cookies(response)
    assert set(jar) >= {ACCESS, REFRESH, ID_REFRESH}, jar
    for name, path in ((ACCESS, "/"), (ID_REFRESH, "/"), (REFRESH, "/refresh/")):
        morsel = jar[name]
        assert morsel.value == "", name
        assert morsel["expires"] == EPOCH, (name, morsel["expires"])
        assert morsel["path"] == path, name
        assert morsel["domain"] == domain, name
        assert morsel["max-age"] == "", name
    assert response["id-refresh-token"] == "remove"
    assert "id-refresh-token" in [
        h.strip() for h in response["Access-Control-Expose-Headers"].split(",")
    ]


def assert_untouched(response: HttpResponse) -> None:
    assert not response.cookies, response.cookies.output()
    assert not response.has_header("id-refresh-token")
