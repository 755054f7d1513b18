"""Fixtures: a fresh ticket store per test, on SQLite and on the real PostgreSQL.

PostgreSQL tests get one schema per session (random name, dropped at the end)
whose tables are emptied before each test; an unreachable server fails the
run loudly (CI starts it), it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from bot.settings import Settings, load_settings
from bot.tickets import TicketStore
from bot.tickets.db import make_engine, upgrade

PG_URL = os.environ.get("TICKETS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TABLES = (
    "ticket_events, ticket_duplicate_links, routing_corrections, tickets, ticket_counters,"
    " resolved_contacts"
)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CITIZENBOT = str(Path(sys.executable).with_name("citizenbot"))


@dataclass
class Clock:
    """A settable clock the store reads instead of the wall clock."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def pii_keys() -> list[str]:
    return [Fernet.generate_key().decode(), Fernet.generate_key().decode()]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tickets.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    # pre-ping: the production tests restart PostgreSQL while this session fixture lives
    admin = create_engine(PG_URL, future=True, pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means: no server
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable (CI must start it): {exc}")
    schema = f"tickets_test_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "db" / "tickets.db"
        target.parent.mkdir()
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("pg_url")
    engine = create_engine(url, future=True)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def env(tmp_path: Path, db_url: str, pii_keys: list[str]) -> dict[str, str]:
    """Environment of a store process: what the CLI and worker processes get."""
    return {
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": db_url,
        "PII_KEY": pii_keys[0],
        "TIMEZONE": "Asia/Shanghai",
        "TICKET_PREFIX": "GD",
        "ROUTING_THRESHOLD": "0.6",
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return load_settings(env)


@pytest.fixture
def clock() -> Clock:
    # a Friday morning in Shanghai, outside any holiday
    return Clock(datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
def store(db_url: str, settings: Settings, clock: Clock) -> Iterator[TicketStore]:
    store = TicketStore(db_url, settings=settings, clock=clock)
    yield store
    store.dispose()


def run_cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    import subprocess

    full_env = {**os.environ, **env}
    done = subprocess.run(
        [CITIZENBOT, *args], env=full_env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout, done.stderr
