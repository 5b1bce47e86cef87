"""Brings Tessera's tables up to date on a database migrated by an earlier
release: what a session records about the device that created it.

As ``0004_tessera_session_lifecycle``: ``0001_initial`` runs every SQL
migration of the ``tessera-sqlx`` crate that the installed release embeds,
and a database migrated by an earlier release needs the SQL files added since
(``0006_session_devices.sql``: three nullable columns of
``tessera_sessions``, ``user_agent``, ``client_address`` and
``device_label``, written once when a session is created; existing rows keep
NULL there and stay valid, listed without a device). This migration runs the
embedded SQL migrations again; sqlx applies only those not yet recorded in
``_sqlx_migrations``, so it is a no-op on a new database. It runs outside
Django's transaction, over Tessera's own connection, and only on
``SUPER_TOKENS["DATABASE_ALIAS"]``.
"""

from typing import Any

from django.db import migrations


def update_tables(apps: Any, schema_editor: Any) -> None:
    from tessera_django import _state

    _state.migrate_connection(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tessera_django", "0004_tessera_session_lifecycle")]
    operations = [
        migrations.RunPython(update_tables, migrations.RunPython.noop, elidable=False),
    ]
