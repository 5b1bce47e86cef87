"""Serves e2e/django_project on 127.0.0.1 with a threaded WSGI server (two
tabs refresh at once in the tests) and prints `listening on
http://127.0.0.1:PORT` once it accepts connections, as the Rust test
servers do. E2E_DJANGO_DB (a SQLite file) gets Django's migrations,
Tessera's tables included, first. Run with the Python of a virtual
environment that has tessera-django installed."""

import os
import sys
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project_settings")

import django  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    django.setup()
    call_command("migrate", verbosity=0)
    app = get_wsgi_application()
    server = make_server(
        "127.0.0.1", int(os.environ.get("E2E_PORT", "0")), app, ThreadingServer, QuietHandler
    )
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
