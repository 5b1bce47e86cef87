"""Creates Tessera's tables (``tessera_sessions``, ``tessera_keys``).

The schema has one source of truth: the SQL files of the ``tessera-sqlx``
crate (``crates/tessera-sqlx/migrations/<database>/``), embedded in the
native module. This migration asks the native module to run them on the
database being migrated, when that database is the one Tessera uses
(``SUPER_TOKENS["DATABASE_ALIAS"]``); on other aliases it does nothing. The
SQL is idempotent, and sqlx records what it applied in ``_sqlx_migrations``.

It runs outside Django's migration transaction (``atomic = False``): the
tables are created over Tessera's own connection. Unapplying it leaves the
tables in place (drop ``tessera_sessions``, ``tessera_keys`` and
``_sqlx_migrations`` by hand if you remove Tessera).

With an in-memory SQLite database (Django's default test database), Tessera
keeps its tables in its own in-memory database, created on first use, so
this migration has nothing to do there beyond making sure it exists.
"""

from typing import Any

from django.db import migrations


def create_tables(apps: Any, schema_editor: Any) -> None:
    from tessera_django import _state

    _state.migrate_connection(schema_editor.connection)


class Migration(migrations.Migration):
    initial = True
    atomic = False
    dependencies: list = []
    operations = [
        migrations.RunPython(create_tables, migrations.RunPython.noop, elidable=False),
    ]
