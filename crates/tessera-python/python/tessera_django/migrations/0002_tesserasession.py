"""The admin's unmanaged model (no table is created or changed)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("tessera_django", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="TesseraSession",
            fields=[
                ("session_handle", models.CharField(max_length=64, primary_key=True, serialize=False)),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "db_table": "tessera_sessions",
                "managed": False,
            },
        ),
    ]
