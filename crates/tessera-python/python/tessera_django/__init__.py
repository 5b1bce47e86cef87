"""Tessera for Django.

The session API of SuperTokens' Django library (``supertokens_jwt_ref``),
kept name for name, with Tessera's Rust core doing the work::

    from tessera_django import supertokens
    from tessera_django.exceptions import SuperTokensUnauthorizedException

Add ``"tessera_django"`` to ``INSTALLED_APPS``, run ``manage.py migrate`` and
configure it with ``settings.SUPER_TOKENS`` (see :mod:`tessera_django.conf`).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
