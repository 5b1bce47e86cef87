"""Real HTTP against Django's threaded live server (a threaded WSGI server):
many client threads at once, each with its own session."""

import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.cookies import SimpleCookie

import pytest


class Browser:
    """A tiny HTTP client that keeps Tessera's cookies (by hand: urllib's
    cookie jar rejects Domain=localhost, the reference library's default)."""

    def __init__(self, base):
        self.base = base
        self.cookies = {}
        self.anti_csrf = None

    def call(self, method, path, body=None, anti_csrf=True):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if anti_csrf and self.anti_csrf:
            request.add_header("anti-csrf", self.anti_csrf)
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as e:
            response = e
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        if response.headers.get("anti-csrf"):
            self.anti_csrf = response.headers["anti-csrf"]
        return response.status, response.read()


@pytest.mark.django_db(transaction=True)
def test_concurrent_clients_on_a_threaded_server(live_server, user_id):
    def client(i):
        b = Browser(live_server.url)
        uid = f"{user_id}-{i}"
        status, body = b.call("POST", "/login", {"user_id": uid, "payload": {"i": i}})
        assert status == 200, body
        for _ in range(10):
            status, body = b.call("POST", "/protected")
            assert status == 200, body
            assert json.loads(body)["user_id"] == uid
        assert b.call("POST", "/protected", anti_csrf=False)[0] == 401
        status, _ = b.call("POST", "/refresh/")
        assert status == 200
        status, body = b.call("POST", "/protected")
        assert status == 200 and json.loads(body)["payload"] == {"i": i}
        status, _ = b.call("POST", "/logout")
        assert status == 200
        return threading.get_ident()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(client, range(16)))
