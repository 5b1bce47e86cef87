"""The benchmark database, shared by bench_django.py and bench_overhead.py."""

import os


def ensure_postgres_database():
    """Creates the benchmark database (PostgreSQL) if it does not exist."""
    if os.environ.get("BENCH_DB", "postgres") != "postgres":
        return
    import psycopg

    name = os.environ.get("BENCH_PG_NAME", "tessera_bench_django")
    with psycopg.connect(
        host=os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        port=os.environ.get("BENCH_PG_PORT", "5432"),
        user=os.environ.get("BENCH_PG_USER", "postgres"),
        password=os.environ.get("BENCH_PG_PASSWORD", ""),
        dbname="postgres",
        autocommit=True,
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
