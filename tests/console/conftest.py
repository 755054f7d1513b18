"""Fixtures: a console app on a fresh SQLite ticket store, with one user per role.

``Staff`` logs a :class:`TestClient` in and keeps its CSRF token, so tests
read like what a person does: ``staff.post_form("/tickets/N/do/reply", text=...)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from starlette.testclient import TestClient

from bot.console.accounts import Accounts
from bot.console.app import create_app
from bot.settings import Settings, load_settings
from bot.tickets import Actor, NewTicket, TicketStore, TicketView

PASSWORD = "correct-horse-battery"
ENV = "市生态环境局"
HOUSING = "市住房和城乡建设局"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "VAR_DIR": str(tmp_path / "var"),
            "PII_KEY": Fernet.generate_key().decode(),
            "RASA_TOKEN": "test-token",
            # nothing listens here: notifications fail fast and are shown as failed
            "RASA_URL": "http://127.0.0.1:9",
            "CONSOLE_NOTIFY_TIMEOUT": "2",
            "CONSOLE_UPLOAD_MAX_MB": "2",
        }
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[TicketStore]:
    s = TicketStore(settings.database_url, settings=settings)
    yield s
    s.dispose()


@pytest.fixture
def app(settings: Settings, store: TicketStore) -> Any:
    return create_app(settings, store)


@pytest.fixture
def accounts(app: Any) -> Accounts:
    found: Accounts = app.state.console.accounts
    # cheap argon2 parameters: the tests check the flow, not the work factor
    found.hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    return found


@dataclass
class Staff:
    client: TestClient
    username: str
    csrf: str = ""

    def refresh_csrf(self, path: str = "/login") -> str:
        page = self.client.get(path)
        found = CSRF.search(page.text)
        assert found, page.text[:500]
        self.csrf = found.group(1)
        return self.csrf

    def post_form(self, path: str, **data: Any) -> Any:
        return self.client.post(
            path, data={"csrf_token": self.csrf, **data}, follow_redirects=False
        )

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf, "Accept": "application/json"}
        headers.update(kwargs.pop("headers", {}))
        return self.client.request(method, path, headers=headers, **kwargs)


def login(app: Any, username: str, password: str = PASSWORD) -> Staff:
    staff = Staff(TestClient(app, base_url="http://testserver"), username)
    staff.refresh_csrf("/login")
    response = staff.post_form("/login", username=username, password=password)
    assert response.status_code == 303, response.text[:500]
    staff.refresh_csrf("/password")
    return staff


@pytest.fixture
def users(accounts: Accounts) -> dict[str, str]:
    """username -> role; every password is PASSWORD and already changed."""
    made = {
        "disp": ("dispatcher", None),
        "boss": ("supervisor", None),
        "root": ("admin", None),
        "env1": ("department", ENV),
        "house1": ("department", HOUSING),
    }
    for name, (role, department) in made.items():
        accounts.add(name, role, department, PASSWORD, must_change=False)
    return {name: role for name, (role, _d) in made.items()}


@pytest.fixture
def as_user(app: Any, users: dict[str, str]) -> Any:
    return lambda name: login(app, name)


def new_ticket(store: TicketStore, **changes: Any) -> TicketView:
    """A complaint left for manual dispatch (no category), over REST from a chat sender."""
    values: dict[str, Any] = {
        "channel": "rest",
        "kind": "complaint",
        "summary": "小区门口烧烤油烟扰民",
        "description": "每天晚上烧烤到凌晨，油烟很大",
        "sender_id": "rest:citizen-x",
        "place": "幸福小区",
        "phone": "13812345678",
    }
    values.update(changes)
    return store.create(NewTicket(**values))


def dispatched(store: TicketStore, department: str = ENV, **changes: Any) -> TicketView:
    view = new_ticket(store, **changes)
    return store.dispatch(view.number, department, Actor("dispatcher", "disp"))
