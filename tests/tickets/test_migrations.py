"""Schema management: migrations match the tables, stores upgrade themselves."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bot.settings import load_settings
from bot.tickets import TicketStore
from bot.tickets.db import current_revision, head_revision, make_engine
from bot.tickets.schema import metadata
from tests.tickets.conftest import run_cli


def test_migrations_match_the_table_definitions(store: TicketStore) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    assert current_revision(store.engine) == head_revision()


def test_store_creates_the_sqlite_directory_and_schema(tmp_path: Path, env: dict[str, str]) -> None:
    path = tmp_path / "new" / "deeper" / "tickets.db"
    url = f"sqlite:///{path}"
    store = TicketStore(url, settings=load_settings({**env, "DATABASE_URL": url}))
    try:
        assert path.exists() and store.list() == []
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert mode == "wal" and busy >= 5000
    finally:
        store.dispose()


def test_cli_db_upgrade(tmp_path: Path, env: dict[str, str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli' / 'tickets.db'}"
    code, out, err = run_cli({**env, "DATABASE_URL": url}, "db", "upgrade")
    assert code == 0, err
    assert head_revision() in out
    engine = make_engine(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
