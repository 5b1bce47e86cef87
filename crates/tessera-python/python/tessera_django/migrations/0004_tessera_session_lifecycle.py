"""Brings Tessera's tables up to date on a database migrated by an earlier
release: the promotion history of the refresh grace window.

As ``0003_tessera_schema_update``: ``0001_initial`` runs every SQL migration
of the ``tessera-sqlx`` crate that the installed release embeds, and a
database migrated by an earlier release needs the SQL files added since
(``0005_session_lifecycle.sql``: three nullable columns of
``tessera_sessions``, ``committed_hash_1``, ``previous_hash_2`` and
``superseded_at``, which every promotion now writes; existing rows keep NULL
there and stay valid). This migration runs the embedded SQL migrations again;
sqlx applies only those not yet recorded in ``_sqlx_migrations``, so it is a
no-op on a new database. It runs outside Django's transaction, over Tessera's
own connection, and only on ``SUPER_TOKENS["DATABASE_ALIAS"]``. The package
runs without a refresh grace window, as the reference library does, so the
columns only record history here.
"""

from typing import Any

from django.db import migrations


def update_tables(apps: Any, schema_editor: Any) -> None:
    from tessera_django import _state

    _state.migrate_connection(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tessera_django", "0003_tessera_schema_update")]
    operations = [
        migrations.RunPython(update_tables, migrations.RunPython.noop, elidable=False),
    ]
