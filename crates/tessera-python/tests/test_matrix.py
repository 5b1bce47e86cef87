"""What scripts/test-django.sh says it tests is what runs: the Django and
Python versions of the matrix pair, and the PostgreSQL driver (psycopg 3 or
psycopg2) Django's connection actually uses."""

import os
import platform

import django
import pytest
from django.db import connection


def test_versions_are_the_matrix_pair():
    expected = os.environ.get("TESSERA_DJANGO_EXPECT_VERSIONS")
    if not expected:
        pytest.skip("not run by scripts/test-django.sh")
    assert f"{django.__version__} {platform.python_version()}" == expected


def test_postgres_driver_is_the_one_in_the_table():
    expected = os.environ.get("TESSERA_DJANGO_EXPECT_PG_DRIVER")
    if connection.vendor != "postgresql" or not expected:
        pytest.skip("PostgreSQL under scripts/test-django.sh only")
    # Django's PostgreSQL backend imports psycopg 3 when it is installed,
    # psycopg2 otherwise; Tessera reads the same settings either way.
    assert connection.Database.__name__ == expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
