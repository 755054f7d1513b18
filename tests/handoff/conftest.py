"""Fixtures for the handoff tests: the console's (a fresh store, one user per role) and a
Rasa stand-in that records the ``trigger_intent`` calls the console makes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.console.app import create_app
from bot.settings import Settings, load_settings
from bot.tickets import TicketStore
from bot.tickets.live import LiveStore

# the console tests' fixtures: settings, store, app, accounts, users, as_user
from tests.console.conftest import accounts, app, as_user, settings, store, users  # noqa: F401


class FakeRasa:
    """Records trigger_intent calls (path, query, body); answers ``status``.

    With ``collected`` a 200 carries ``messages``: Rasa's answer when the
    requested output channel is not running (nothing reached the citizen).
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.status = 200
        self.collected = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers.get("content-length", 0))
                fake.calls.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                body = {"tracker": {}, **({"messages": [{"text": "…"}]} if fake.collected else {})}
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def intents(self) -> list[str]:
        return [c["body"]["name"] for c in self.calls]


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    yield fake
    fake.server.shutdown()


@pytest.fixture
def live_app(settings: Settings, rasa: FakeRasa, store: TicketStore, users: dict) -> Any:  # noqa: F811
    """The console with RASA_URL at the stand-in (same database, same users)."""
    env = {
        "VAR_DIR": str(settings.var_dir),
        "PII_KEY": settings.pii_key,
        "RASA_TOKEN": "test-token",
        "RASA_URL": rasa.url,
        "CONSOLE_NOTIFY_TIMEOUT": "5",
        "HANDOFF_WAIT_MINUTES": "3",
    }
    return create_app(load_settings(env), store)


@pytest.fixture
def live(store: TicketStore) -> LiveStore:  # noqa: F811
    return LiveStore(store)
