"""Engines and schema upgrades shared by the store, the CLI and the tests.

SQLite is tuned for several processes on one file (Rasa action server,
console, CLI): WAL so readers never block the writer, a busy timeout so a
writer waits instead of failing, and ``BEGIN IMMEDIATE`` for write
transactions so two writers never deadlock upgrading read locks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.future import create_engine
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: execution option marking a connection whose transaction will write
WRITE = "citizenbot_write"
SQLITE_BUSY_MS = 30_000


def sqlite_path(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def private_file(path: Path) -> Path:
    """Create ``path`` (and its directory) readable by its owner only, or tighten it.

    A ticket database holds encrypted contact details and masked case text, a
    tracker holds what citizens typed: neither is for other accounts on the
    machine. SQLite gives its -wal and -shm files the database file's mode.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(PermissionError):
            path.chmod(0o600)
    return path


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, future=True, pool_pre_ping=True)
    path = sqlite_path(parsed)
    if path is not None:
        private_file(path)
    # A small pool keeps connections (and their PRAGMAs) instead of reopening
    # the file for every transaction; memory databases keep SQLAlchemy's default.
    pool: dict[str, Any] = {"poolclass": QueuePool, "pool_size": 5} if path else {}
    engine = create_engine(
        parsed,
        future=True,
        connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN, not pysqlite.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(connection: Connection | None = None):
    """Alembic configuration built in code, so no alembic.ini is needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[Connection]:
    """Serialise concurrent upgrades (several processes starting at once)."""
    path = sqlite_path(engine.url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(4242001)"))
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(4242001)"))
                conn.commit()
    elif path is not None:
        lock = private_file(path.with_name(path.name + ".migrate.lock"))
        with open(lock, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            yield conn


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; cheap when it is already there."""
    if revision == "head" and current_revision(engine) == head_revision():
        return head_revision()
    from alembic import command

    with _upgrade_lock(engine) as conn:
        command.upgrade(alembic_config(conn), revision)
        conn.commit()
    return current_revision(engine)
