"""The binding reads the session cookies from the raw ``Cookie`` header
instead of making Django parse ``request.COOKIES`` (src/cookies.rs). These
tests compare it with Django's own parser on a corpus of hostile headers:
for every header the fast path accepts, each cookie value is exactly what
``request.COOKIES`` holds; the headers it declines are read through
``request.COOKIES``, so a session works either way."""

import itertools
import random

import pytest
from django.http import HttpResponse
from django.http.cookie import parse_cookie
from django.test import RequestFactory

from tessera_django import _native, supertokens
from tessera_django.exceptions import SuperTokensUnauthorizedException

NAMES = ["sAccessToken", "sIdRefreshToken", "sRefreshToken", "__Host-sAccessToken", ""]

HOSTILE = [
    "",
    ";",
    ";;;",
    "=",
    "==",
    "sAccessToken",
    "sAccessToken=",
    "sAccessToken==",
    "sAccessToken=a=b",
    " sAccessToken = a ",
    "sAccessToken=a; sAccessToken=b",
    "sAccessToken=a;sAccessToken=b;sAccessToken=",
    "sAccessToken=a; sAccessToken",
    "\tsAccessToken\t=\ta\t",
    "\x0bsAccessToken\x0c=\x1ca\x1d\x1e\x1f",
    "\x01sAccessToken=a",
    "sAccessToken=\x01a\x01",
    "sAccessToken=a\x00b",
    "SACCESSTOKEN=a; saccesstoken=b",
    "sAccessToken =a",
    "s AccessToken=a",
    "sAccessToken=\"a\"",
    "sAccessToken=\"a\\\"b\"",
    "sAccessToken=\"\\101\"",
    "sAccessToken=a\"",
    "sAccessToken=é",
    "sAccessToken=\xe9",
    "sAccessToken=a\x7f",
    "sAccessToken=\xc3\xa9",
    "sAccessToken=a\u0085",
    "sAccessToken=a\xa0",
    "=sAccessToken",
    "sAccessToken=a, sIdRefreshToken=b",
    "sAccessToken=a,sIdRefreshToken=b; sIdRefreshToken=c",
    "$Version=1; sAccessToken=a; $Path=/",
    "__Host-sAccessToken=h; sAccessToken=s",
    "sIdRefreshToken=; sAccessToken=",
    "a=1; sRefreshToken=r; b; ;c=; =d",
    "sAccessToken=" + "x" * 5000,
    "sAccessToken=a;" * 200,
]


def django_pairs(header):
    """The (name, value) pairs Django's ``parse_cookie`` reads, in order,
    before its dict keeps the last of each name (the same splitting and
    stripping; the fast path declines the quoted values ``_unquote``
    rewrites)."""
    for chunk in header.split(";"):
        name, value = chunk.split("=", 1) if "=" in chunk else ("", chunk)
        name, value = name.strip(), value.strip()
        if name or value:
            yield name, value


def django_conflict(header, names):
    """Two copies of one of ``names`` with different values, as Django
    splits them: what the binding refuses as cookie tossing."""
    seen = {}
    for name, value in django_pairs(header):
        if name in names:
            if seen.setdefault(name, value) != value:
                return True
    return False


def django_values(header):
    parsed = parse_cookie(header)
    return [parsed.get(name) for name in NAMES]


@pytest.mark.parametrize("header", HOSTILE)
def test_the_fast_path_agrees_with_django_or_declines(header):
    fast = _native._cookie_values(header, NAMES)
    if fast is not None:
        assert fast == django_values(header), header
    else:
        # Declined only for what Django rewrites: quotes, non-ASCII.
        assert '"' in header or any(ord(c) > 0x7E for c in header), header


def test_random_headers_from_hostile_pieces():
    pieces = [
        "sAccessToken", "sIdRefreshToken", "sRefreshToken", "=", ";", " ", "\t", "\x1c",
        "\x0b", "a", "b.c", "==", ",", "$", "\x00", "\x01", "__Host-", "\"", "\\", "é",
        # Whole pairs, so that copies of one name (equal or not) are common.
        "sAccessToken=x;", "sAccessToken=y;", "sIdRefreshToken=x;", "sIdRefreshToken=y;",
    ]
    rng = random.Random(1729)
    checked = declined = conflicts = 0
    for _ in range(20000):
        header = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        fast = _native._cookie_values(header, NAMES)
        if fast is None:
            declined += 1
            assert '"' in header or "é" in header
            continue
        checked += 1
        assert fast == django_values(header), repr(header)
        for first, second in (("sIdRefreshToken", "sAccessToken"), ("sIdRefreshToken", "sRefreshToken")):
            expected = django_conflict(header, (first, second))
            conflicts += expected
            assert _native._cookie_conflict(header, first, second) == expected, repr(header)
    assert checked > 10000 and declined > 0 and conflicts > 100, (checked, declined, conflicts)


@pytest.mark.parametrize("header", HOSTILE)
def test_the_fast_path_finds_conflicting_copies_as_django_splits_them(header):
    conflict = _native._cookie_conflict(header, "sIdRefreshToken", "sAccessToken")
    if conflict is not None:
        assert conflict == django_conflict(header, ("sIdRefreshToken", "sAccessToken")), header


def test_pair_splitting_edge_cases():
    """What src/cookies.rs splits: at the first ``=`` only, a chunk without
    ``=`` is a value of the empty name, Python's whitespace (``\x1c`` and
    ``\x0b`` too) is stripped, the last copy wins."""
    assert _native._cookie_values("sAccessToken==a=b=", ["sAccessToken"]) == ["=a=b="]
    assert _native._cookie_values("sAccessToken=", ["sAccessToken"]) == [""]
    header = " a=1 ; sAccessToken = x.y.z ;b; sAccessToken=second;\x1csIdRefreshToken=\x1f id \t"
    assert _native._cookie_values(header, ["sAccessToken", "sIdRefreshToken", "c", ""]) == [
        "second", "id", None, "b",
    ]
    assert _native._cookie_values('sAccessToken="x"', ["sAccessToken"]) is None
    assert _native._cookie_values("sAccessToken=\x7f", ["sAccessToken"]) is None
    assert _native._cookie_conflict("sAccessToken=a; sAccessToken=a", "sIdRefreshToken", "sAccessToken") is False
    assert _native._cookie_conflict("sAccessToken=a; \x1csAccessToken=b", "sIdRefreshToken", "sAccessToken") is True
    assert _native._cookie_conflict("sAccessToken=a; sAccessToken=a\x1f", "sIdRefreshToken", "sAccessToken") is False


def _session_cookie_header(user_id):
    response = HttpResponse()
    supertokens.create_new_session(response, user_id)
    return {name: morsel.value for name, morsel in response.cookies.items()}, response["anti-csrf"]


@pytest.mark.parametrize(
    "shape",
    ["plain", "spaces", "duplicate", "quoted-elsewhere", "non-ascii-elsewhere"],
)
def test_a_session_verifies_through_either_path(shape, user_id):
    jar, anti_csrf = _session_cookie_header(user_id)
    access, id_refresh = jar["sAccessToken"], jar["sIdRefreshToken"]
    header = {
        "plain": f"sAccessToken={access}; sIdRefreshToken={id_refresh}",
        "spaces": f"  sAccessToken =\t{access} ;sIdRefreshToken= {id_refresh}\x1c",
        # Two copies with one value (a copy with another value is refused
        # as cookie tossing, whichever path reads it).
        "duplicate": f"sAccessToken={access}; sIdRefreshToken={id_refresh}; sAccessToken={access}",
        "quoted-elsewhere": f'theme="dark"; sAccessToken={access}; sIdRefreshToken={id_refresh}',
        "non-ascii-elsewhere": f"name=\xe9; sAccessToken={access}; sIdRefreshToken={id_refresh}",
    }[shape]
    request = RequestFactory().post("/", HTTP_COOKIE=header, HTTP_ANTI_CSRF=anti_csrf)
    assert "COOKIES" not in request.__dict__
    session = supertokens.get_session(request, HttpResponse(), True)
    assert session.get_user_id() == user_id
    # Django's cookie dict was not built for it.
    if shape in ("plain", "spaces", "duplicate"):
        assert "COOKIES" not in request.__dict__


@pytest.mark.parametrize("prefix", ["", " ", "\x1c", "\x0b"])
def test_a_tossed_copy_is_refused_on_the_fast_path(prefix, user_id):
    """A second access-token cookie with another value (planted by a
    sibling subdomain) is refused, also when its name only differs by
    characters Django strips: Django's COOKIES would have let it win."""
    jar, anti_csrf = _session_cookie_header(user_id)
    access, id_refresh = jar["sAccessToken"], jar["sIdRefreshToken"]
    for planted in (access[:-2] + "xx", "x"):
        header = f"sAccessToken={access}; sIdRefreshToken={id_refresh}; {prefix}sAccessToken={planted}"
        request = RequestFactory().get("/", HTTP_COOKIE=header)
        with pytest.raises(SuperTokensUnauthorizedException):
            supertokens.get_session(request, HttpResponse(), False)
        assert "COOKIES" not in request.__dict__


def test_cookies_already_parsed_or_replaced_are_the_ones_read(user_id):
    """A request whose COOKIES was set or computed before (middleware that
    rewrites cookies, a test that assigns them) is read through COOKIES."""
    jar, anti_csrf = _session_cookie_header(user_id)
    request = RequestFactory().post("/", HTTP_COOKIE="sAccessToken=wrong", HTTP_ANTI_CSRF=anti_csrf)
    request.COOKIES = dict(jar)
    assert supertokens.get_session(request, HttpResponse(), True).get_user_id() == user_id
    request = RequestFactory().post("/", HTTP_ANTI_CSRF=anti_csrf)
    request.COOKIES = {}
    with pytest.raises(Exception):
        supertokens.get_session(request, HttpResponse(), True)


def test_a_request_subclass_is_read_through_cookies(user_id):
    from django.core.handlers.wsgi import WSGIRequest

    jar, anti_csrf = _session_cookie_header(user_id)

    class Rewriting(WSGIRequest):
        @property
        def COOKIES(self):  # noqa: N802 (Django's name)
            return dict(jar)

    environ = RequestFactory().post("/", HTTP_ANTI_CSRF=anti_csrf, HTTP_COOKIE="x=y").environ
    request = Rewriting(environ)
    assert supertokens.get_session(request, HttpResponse(), True).get_user_id() == user_id


def test_every_combination_of_two_cookies_and_separators():
    parts = ["sAccessToken=a", "sAccessToken=b", "sIdRefreshToken=c", "x", "=y", ""]
    seps = [";", "; ", " ;", ";;"]
    for a, b in itertools.product(parts, repeat=2):
        for sep in seps:
            header = a + sep + b
            assert _native._cookie_values(header, NAMES) == django_values(header), repr(header)
