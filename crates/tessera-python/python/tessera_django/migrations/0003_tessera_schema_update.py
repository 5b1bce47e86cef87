"""Brings Tessera's tables up to date on a database migrated by an earlier
release.

``0001_initial`` runs every SQL migration of the ``tessera-sqlx`` crate that
the installed release embeds, so a new database gets the whole schema from
it. A database migrated by an earlier release applied ``0001_initial`` back
then and needs the SQL files added since (``0004_change_log.sql``: the
change log the change feed reads, which every revocation now writes). This
migration runs the embedded SQL migrations again; sqlx applies only those
not yet recorded in ``_sqlx_migrations``, so it is a no-op on a new
database. Like ``0001_initial`` it runs outside Django's transaction, over
Tessera's own connection, and only on ``SUPER_TOKENS["DATABASE_ALIAS"]``.
"""

from typing import Any

from django.db import migrations


def update_tables(apps: Any, schema_editor: Any) -> None:
    from tessera_django import _state

    _state.migrate_connection(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tessera_django", "0002_tesserasession")]
    operations = [
        migrations.RunPython(update_tables, migrations.RunPython.noop, elidable=False),
    ]
