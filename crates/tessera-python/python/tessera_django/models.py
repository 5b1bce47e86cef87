"""A model only for the admin (:mod:`tessera_django.admin`).

Tessera's sessions are kept by its Rust core, over its own connections and,
with SQLite, in a file of its own (see :mod:`tessera_django.db`), so Django's
ORM never reads or writes them. ``TesseraSession`` is unmanaged: it gives
the admin a place in its index and the usual view/delete permissions; the
admin's pages call the native module instead of querying this model.
"""

from django.db import models


class TesseraSession(models.Model):
    session_handle = models.CharField(max_length=64, primary_key=True)

    class Meta:
        managed = False
        db_table = "tessera_sessions"
        verbose_name = "session"
        verbose_name_plural = "sessions"

    def __str__(self) -> str:
        return self.session_handle
