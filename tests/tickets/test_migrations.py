"""Schema management: migrations match the tables, stores upgrade themselves."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table

from bot.settings import Settings, load_settings
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


def test_a_database_from_before_the_keyed_audit_upgrades_and_still_verifies(
    tmp_path: Path, settings: Settings
) -> None:
    """A 0003 database with sha256-chained events: upgraded, verified, searched, extended."""
    from datetime import datetime

    from sqlalchemy import insert, select

    from bot.tickets import Actor
    from bot.tickets.audit import GENESIS, canonical_json, event_hash
    from bot.tickets.db import upgrade
    from bot.tickets.schema import counters, events

    url = f"sqlite:///{tmp_path / 'old' / 'tickets.db'}"
    engine = make_engine(url)
    upgrade(engine, "0003")
    at = datetime(2026, 11, 20, 2, 0)
    old_tickets = Table("tickets", MetaData(), autoload_with=engine)
    old_events = Table("ticket_events", MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(insert(counters).values(day="GD20261120", last=1))
        values = dict(
            number="GD20261120-0001", status="received", version=1, kind="complaint",
            channel="hotline", summary="我叫王建国，噪音扰民", description="",
            sla_class="complaint",
            deadline=at, reopen_count=0, transcript="[]", attachments="[]", facts="{}",
            created_at=at, updated_at=at, event_count=1, last_event_hash=GENESIS,
        )
        ticket_id = conn.execute(insert(old_tickets).values(**values)).inserted_primary_key[0]
        event = dict(
            ticket_id=ticket_id, seq=1, action="create", actor_role="system",
            actor_name="system", actor_department=None, at=at, from_status=None,
            to_status="received", reason="", payload=canonical_json({"summary": "噪音扰民"}),
            prev_hash=GENESIS,
        )
        event["hash"] = event_hash("GD20261120-0001", event, GENESIS)
        conn.execute(insert(old_events).values(**event))
        conn.execute(
            old_tickets.update().where(old_tickets.c.id == ticket_id)
            .values(last_event_hash=event["hash"])
        )
    engine.dispose()

    store = TicketStore(url, settings=load_settings({**_env(settings), "DATABASE_URL": url}))
    try:
        assert current_revision(store.engine) == head_revision()
        assert store.verify_audit() == []
        assert [t.number for t in store.list(query="噪音")] == ["GD20261120-0001"]
        assert store.list(query="王建国") == []  # filled masked by the store
        store.add_note("GD20261120-0001", "已联系", Actor("dispatcher", "wang"))
        assert store.verify_audit() == []
        with store.engine.connect() as conn:
            states = conn.execute(select(events.c.state).order_by(events.c.seq))
            assert [s is not None for s in states.scalars()] == [False, True]
    finally:
        store.dispose()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "VAR_DIR": str(settings.var_dir),
        "PII_KEY": ",".join(settings.effective_pii_keys),
        "TIMEZONE": settings.timezone,
    }


def test_console_tables_the_console_made_itself_are_kept_by_the_migration(
    tmp_path: Path,
) -> None:
    """Before 0010 the console ran create_all: its users survive the upgrade, unchanged."""
    from datetime import datetime

    from sqlalchemy import insert, select

    from bot.tickets.db import upgrade
    from bot.tickets.schema import console_api_tokens, console_notifications, console_users

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0009")
    metadata.create_all(engine, tables=[console_users, console_api_tokens, console_notifications])
    now = datetime(2026, 11, 30, 9, 0)
    with engine.begin() as conn:
        conn.execute(insert(console_users).values(
            username="wang", password_hash="x", role="admin", must_change_password=False,
            disabled=False, session_epoch=0, created_at=now, updated_at=now))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(select(console_users.c.username)).scalars().all() == ["wang"]
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert current_revision(engine) == head_revision()
    engine.dispose()
