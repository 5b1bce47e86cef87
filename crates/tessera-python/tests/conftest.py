import os
import uuid

import pytest
from django.http import HttpResponse

from tessera_django import supertokens
from tessera_django.testing import frozen_clock

import support

BACKEND = os.environ.get("TESSERA_DJANGO_DB", "sqlite")


def pytest_report_header(config):
    return f"tessera-django backend: {BACKEND}"


@pytest.fixture(autouse=True)
def _test_database(db):
    """Every test uses the test database pytest-django creates (and runs
    Django's migrations on, Tessera's included). pytest-django creates it
    only if some test asks for ``db`` or ``django_db``, and Tessera reads the
    database name at first use.

    Tessera writes through its own connections, so what a test writes is not
    rolled back at the end of the test; tests use fresh user ids instead."""


@pytest.fixture
def user_id():
    return f"user-{uuid.uuid4()}"


@pytest.fixture
def clock():
    with frozen_clock() as c:
        yield c


class Login:
    """A session created through the API, with what the client received."""

    def __init__(self, user_id, payload=None, info=None):
        self.response = HttpResponse()
        self.session = supertokens.create_new_session(self.response, user_id, payload, info)
        self.jar = support.values(self.response)
        self.anti_csrf = self.response.get("anti-csrf")

    def request(self, method="post", anti_csrf=True, **kwargs):
        token = self.anti_csrf if anti_csrf is True else (anti_csrf or None)
        return support.request(self.jar, method=method, anti_csrf=token, **kwargs)

    def refresh(self):
        """Calls refresh_session and takes the new cookies and header."""
        response = HttpResponse()
        session = supertokens.refresh_session(self.request(), response)
        self.jar.update(support.values(response))
        self.anti_csrf = response.get("anti-csrf")
        return session, response


@pytest.fixture
def login(user_id):
    def make(payload=None, info=None, uid=None):
        return Login(uid if uid is not None else user_id, payload, info)

    return make
