"""What the wheel ships: the Django app, its migration and command, the
native module and the type information."""

import importlib
import os
from pathlib import Path

import tessera_django
from tessera_django import _native

PACKAGE = Path(tessera_django.__file__).parent


def test_the_installed_package_is_tested():
    if os.environ.get("TESSERA_DJANGO_EXPECT_INSTALLED"):
        source_tree = Path(__file__).resolve().parents[1] / "python"
        assert source_tree not in PACKAGE.resolve().parents, PACKAGE


def test_wheel_contents():
    for name in (
        "py.typed",
        "_native.pyi",
        "supertokens.py",
        "exceptions.py",
        "middleware.py",
        "authentication.py",
        "testing.py",
        "migrations/0001_initial.py",
        "management/commands/remove_old_tokens.py",
        "management/commands/tessera_sessions.py",
        "management/commands/tessera_revoke.py",
        "migrations/0002_tesserasession.py",
        "admin.py",
        "models.py",
        "templates/admin/tessera_django/sessions_by_user.html",
    ):
        assert (PACKAGE / name).is_file(), name
    assert Path(_native.__file__).parent == PACKAGE


def test_public_modules_import():
    for module in ("supertokens", "exceptions", "session", "conf", "db", "middleware",
                   "authentication", "testing", "checks", "apps"):
        importlib.import_module(f"tessera_django.{module}")
    from tessera_django import supertokens

    assert set(supertokens.__all__) == {
        "create_new_session",
        "get_session",
        "refresh_session",
        "get_session_info",
        "update_session_info",
        "revoke_session",
        "revoke_all_sessions_for_user",
        "get_all_session_handles_for_user",
        "get_all_sessions_for_user",
        "set_headers_for_options_api",
    } | {
        "a" + name
        for name in (
            "create_new_session",
            "get_session",
            "refresh_session",
            "get_session_info",
            "update_session_info",
            "revoke_session",
            "revoke_all_sessions_for_user",
            "get_all_session_handles_for_user",
            "get_all_sessions_for_user",
        )
    }


def test_one_abi3_native_module():
    # scripts/test-django.sh installs the abi3 wheel into every environment:
    # the stable-ABI module is named _native.abi3.so for every interpreter.
    # (The version-specific build, --no-default-features, passes the rest.)
    if os.environ.get("TESSERA_DJANGO_EXPECT_ABI3"):
        assert Path(_native.__file__).name == "_native.abi3.so", _native.__file__
