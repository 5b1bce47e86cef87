"""Access tokens other services verify (``ACCESS_TOKEN_ALGORITHM``,
docs/PROTOCOL.md §5.6), checked by a verifier nobody here wrote: PyJWT's
``PyJWKClient`` against the JWKS view on Django's live server."""

import base64
import datetime
import hashlib
import hmac
import inspect
import json

import httpx
import jwt
import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from tessera_django import _native, _state, supertokens
from tessera_django.exceptions import SuperTokensTryRefreshTokenException
from tessera_django.testing import frozen_clock

pytestmark = pytest.mark.django_db(transaction=True)

ALGORITHMS = ["EdDSA", "ES256", "RS256"]
COOLDOWN_PARAMS = inspect.signature(jwt.PyJWKClient).parameters
ISSUER = "https://app.example.test"
AUDIENCE = "orders-api"


@pytest.fixture
def keyed(settings, request, tmp_path):
    alg = request.param
    url = f"sqlite://{tmp_path / 'jwks.sqlite'}"
    _native.migrate(url)
    settings.SUPER_TOKENS = {
        "ACCESS_TOKEN_ALGORITHM": alg,
        "ACCESS_TOKEN_ISSUER": ISSUER,
        "ACCESS_TOKEN_AUDIENCE": AUDIENCE,
        # A database of its own: the managers earlier tests built (other
        # algorithms, HS256 included) may still be alive with their change
        # feeds, and each would take a shared key table back to its own
        # algorithm, as differently configured instances sharing one
        # database do (PROTOCOL.md §5.6). Key storage itself is tested on
        # every backend by the Rust suites.
        "DATABASE_URL": url,
    }
    settings.ROOT_URLCONF = "testproject.urls_jwks"
    return alg


def sign_in(user_id, payload=None):
    response = HttpResponse()
    supertokens.create_new_session(response, user_id, payload or {"role": "buyer"})
    return response.cookies["sAccessToken"].value, response.cookies["sIdRefreshToken"].value


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def tessera_accepts(token, id_refresh):
    request = RequestFactory().get("/", HTTP_COOKIE=f"sAccessToken={token}; sIdRefreshToken={id_refresh}")
    try:
        supertokens.get_session(request, HttpResponse(), False)
        return True
    except SuperTokensTryRefreshTokenException:
        return False


@pytest.mark.parametrize("keyed", ALGORITHMS, indirect=True)
def test_pyjwt_verifies_tessera_tokens_with_the_live_jwks(keyed, live_server, user_id):
    alg = keyed
    token, id_refresh = sign_in(user_id)
    url = live_server.url + "/.well-known/jwks.json"
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/jwk-set+json"
    max_age = int(r.headers["cache-control"].split("max-age=")[1])
    assert 0 < max_age <= 3600
    keys = r.json()["keys"]
    assert keys and all("d" not in k and "p" not in k for k in keys), "no private part published"

    client = jwt.PyJWKClient(url)
    signing_key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == user_id
    assert claims["sh"] == supertokens.get_all_session_handles_for_user(user_id)[0]
    assert claims["pld"] == {"role": "buyer"}
    assert jwt.get_unverified_header(token)["kid"] == signing_key.key_id

    header, payload, signature = token.split(".")
    # Tampered payload: refused by both.
    claims_bytes = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged_payload = b64(claims_bytes.replace(b'"buyer"', b'"admin"'))
    tampered = f"{header}.{forged_payload}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, signing_key.key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
    assert not tessera_accepts(tampered, id_refresh)
    # alg "none", same kid: refused by both.
    kid = signing_key.key_id
    none = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': kid}).encode())}.{payload}."
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(none, signing_key.key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
    assert not tessera_accepts(none, id_refresh)
    # The classic confusion: HS256, MACed with the published key text.
    # (By hand: PyJWT itself refuses a JWK-looking HMAC secret.) Both the
    # published JSON of the key and the JWKS document are tried as secrets.
    jwk_texts = [json.dumps(next(k for k in keys if k["kid"] == kid)).encode(), r.content]
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    for secret in jwk_texts:
        mac = hmac.new(secret, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest()
        confused = f"{hs_header}.{payload}.{b64(mac)}"
        with pytest.raises(jwt.InvalidAlgorithmError):
            jwt.decode(confused, signing_key.key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)
        assert not tessera_accepts(confused, id_refresh)
    # Wrong audience: the verifier's own check.
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, signing_key.key, algorithms=[alg], audience="other", issuer=ISSUER)
    assert tessera_accepts(token, id_refresh)


@pytest.mark.parametrize("keyed", ["EdDSA"], indirect=True)
def test_an_expired_token_is_refused_by_pyjwt(keyed, live_server, user_id):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=3)
    with frozen_clock(past):
        token, _ = sign_in(user_id)
    client = jwt.PyJWKClient(live_server.url + "/.well-known/jwks.json")
    key = client.get_signing_key_from_jwt(token)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, key.key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)


@pytest.mark.parametrize("keyed", ["ES256"], indirect=True)
def test_a_cached_key_set_across_a_rotation(keyed, live_server, user_id):
    url = live_server.url + "/.well-known/jwks.json"
    old_token, _ = sign_in(user_id)
    # PyJWT refuses to refetch within `cooldown_duration` (30 s) of its last
    # fetch, its guard against being made to hammer the endpoint; the
    # rotation here comes a moment after the first fetch, not hours.
    options = {"cooldown_duration": 0} if "cooldown_duration" in COOLDOWN_PARAMS else {}
    client = jwt.PyJWKClient(url, cache_jwk_set=True, lifespan=3600, **options)
    old_key = client.get_signing_key_from_jwt(old_token)
    _state.get().rotate_signing_key()
    new_token, _ = sign_in(user_id)
    new_kid = jwt.get_unverified_header(new_token)["kid"]
    assert new_kid != old_key.key_id
    # The cached set still verifies the old token (no refetch needed) ...
    assert client.get_signing_key_from_jwt(old_token).key_id == old_key.key_id
    jwt.decode(old_token, old_key.key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER)
    # ... and the first token naming the new kid makes PyJWT refetch.
    new_key = client.get_signing_key_from_jwt(new_token)
    assert new_key.key_id == new_kid
    jwt.decode(new_token, new_key.key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER)
    # The refetched set still lists the previous key for unexpired tokens.
    kids = {k["kid"] for k in httpx.get(url).json()["keys"]}
    assert {old_key.key_id, new_kid} <= kids


def test_hs256_publishes_nothing(settings, live_server):
    settings.SUPER_TOKENS = {}
    settings.ROOT_URLCONF = "testproject.urls_jwks"
    r = httpx.get(live_server.url + "/.well-known/jwks.json")
    assert r.status_code == 404 and r.content == b""
    assert _state.get().jwks() is None


def test_an_unknown_algorithm_is_refused(settings):
    settings.SUPER_TOKENS = {"ACCESS_TOKEN_ALGORITHM": "HS512"}
    with pytest.raises(Exception, match="ACCESS_TOKEN_ALGORITHM"):
        _state.get()
