from django.apps import AppConfig


class TesseraDjangoConfig(AppConfig):
    """The ``tessera_django`` app: migrations that create Tessera's tables,
    the ``remove_old_tokens`` command and the system checks."""

    name = "tessera_django"
    label = "tessera_django"
    verbose_name = "Tessera sessions"

    def ready(self) -> None:
        from . import _state, checks  # noqa: F401  (registers the checks)

        _state.install_test_database_hook()
