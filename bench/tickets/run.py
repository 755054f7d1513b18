"""Ticket store throughput on SQLite and PostgreSQL, against a bare-table floor.

For each backend the same run measures, on the same database server (SQLite: a
second temporary file next to the store's, same engine settings):

* **store**: ``TicketStore.create`` / ``add_note`` / ``list(limit=50)``, i.e. with
  the idempotency-key lookup, ticket number counter, routing and SLA deadline,
  Fernet-encrypted personal data, hash-chained audit events, optimistic versions
  and masked views (``docs/tickets.md``);
* **floor**: the same ticket rows written with plain SQLAlchemy Core inserts and
  updates into a bare copy of the ``tickets`` table (same columns and indexes, a
  random ``bench_floor_*`` name), one transaction per create/update like the
  store, and no audit chain, encryption or validation: what any ticket store
  must pay on this database.

The ratio line (store/floor throughput, store/floor list latency) is what to
compare across machines; absolute figures depend on the machine and its load.
Store and floor alternate in ``--rounds`` parts (order swapped every round), so on
a shared machine both see the same load and the same table sizes.

Numbers, not assertions (the machine is shared). Run with
``.venv/bin/python bench/tickets/run.py [--n 300] [--rounds 6] [--pg-url URL]``;
the PostgreSQL part uses a throw-away schema that is dropped afterwards, and the
floor table is dropped on both backends.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import MetaData, Table, create_engine, func, insert, select, text, update
from sqlalchemy.engine import Connection

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.settings import load_settings
from bot.tickets import Actor, NewTicket, Role, TicketStore, db
from bot.tickets.schema import tickets

STAFF = Actor(Role.DEPARTMENT, "bench", "市生态环境局")
#: list(50) is a few milliseconds: one call is all noise on a shared machine
LIST_REPEATS = 15
FLOOR_PREFIX = "bench_floor_"
UTC = timezone.utc


def _new(i: int) -> NewTicket:
    return NewTicket(
        channel="rest",
        kind="complaint",
        summary=f"第{i}号楼下烧烤摊油烟扰民，晚上十点后还在营业",
        description="联系电话13812345678",
        place=f"幸福小区{i}号楼",
        phone="13812345678",
        name="张三",
        category="环境保护",
        category_confidence=0.9,
        idempotency_key=f"bench:{i}",
    )


def floor_table(name: str) -> Table:
    """The ``tickets`` table's columns, unique constraints and indexes under ``name``.

    Copied from the real schema rather than written out, so the floor keeps
    paying for exactly the indexes the store pays for when the schema changes.
    Constraint and index names are renamed too: on PostgreSQL they share the
    schema's namespace with the store's ``pk_tickets``, ``ix_tickets_*``.
    """
    table = tickets.to_metadata(MetaData(), name=name)
    for item in [*table.constraints, *table.indexes]:
        if isinstance(item.name, str) and "tickets" in item.name:
            item.name = item.name.replace("tickets", name, 1)
    return table


def _naive_utc() -> datetime:
    # the store keeps naive UTC (portable between SQLite and PostgreSQL)
    return datetime.now(UTC).replace(tzinfo=None)


class Floor:
    """The same ticket rows in a bare table: the cost any ticket store must pay.

    Uses ``db.make_engine`` like the store (SQLite: WAL, ``synchronous=NORMAL``,
    ``BEGIN IMMEDIATE`` for writes; PostgreSQL: pre-ping pool), so the ratio is
    the store's own work and not a difference in connection settings.
    """

    def __init__(self, url: str, name: str | None = None) -> None:
        self.engine = db.make_engine(url)
        self.table = floor_table(name or f"{FLOOR_PREFIX}{uuid.uuid4().hex[:12]}")
        # checkfirst=False: a name collision must fail, never reuse a table
        self.table.create(self.engine, checkfirst=False)
        self.day = datetime.now(UTC).strftime("%Y%m%d")

    def _write(self) -> Connection:
        return self.engine.connect().execution_options(**{db.WRITE: True})

    def create(self, i: int) -> str:
        """Insert ticket ``i`` as the store would store it, in plaintext, already routed."""
        new = _new(i)
        now = _naive_utc()
        number = f"GD{self.day}-{i + 1:04d}"
        with self._write() as conn, conn.begin():
            conn.execute(
                insert(self.table).values(
                    number=number,
                    idempotency_key=new.idempotency_key,
                    status="dispatched",
                    version=0,
                    kind=new.kind,
                    channel=new.channel,
                    summary=new.summary,
                    description=new.description,
                    place=new.place,
                    phone_enc=new.phone,
                    name_enc=new.name,
                    predicted_category=new.category,
                    category=new.category,
                    category_confidence=new.category_confidence,
                    department=STAFF.department,
                    sla_class="complaint",
                    deadline=now + timedelta(days=14),
                    reopen_count=0,
                    transcript="[]",
                    attachments="[]",
                    facts="{}",
                    created_at=now,
                    updated_at=now,
                    event_count=0,
                    last_event_hash="",
                )
            )
        return number

    def update(self, number: str) -> None:
        """Bump the version and time of one ticket, as every store change does."""
        table = self.table
        with self._write() as conn, conn.begin():
            result = conn.execute(
                update(table)
                .where(table.c.number == number)
                .values(version=table.c.version + 1, updated_at=_naive_utc())
            )
            if result.rowcount != 1:
                raise RuntimeError(f"floor update of {number} hit {result.rowcount} rows")

    def list(self, limit: int = 50) -> list[Any]:
        """Newest first, as ``TicketStore.list`` orders them."""
        table = self.table
        stmt = select(table).order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        with self.engine.connect() as conn, conn.begin():
            return list(conn.execute(stmt).all())

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def drop(self) -> None:
        """Drop the table and close the pool (the benchmark leaves nothing behind)."""
        try:
            self.table.drop(self.engine, checkfirst=True)
        finally:
            self.engine.dispose()


@dataclass
class Figures:
    creates_per_s: float
    updates_per_s: float
    list_ms: float


def _alternate(
    rounds: int, n: int, store_part: Callable[[range], None], floor_part: Callable[[range], None]
) -> tuple[float, float]:
    """Seconds spent by each side over ``n`` items, split into alternating parts."""
    seconds = {"store": 0.0, "floor": 0.0}
    sides = {"store": store_part, "floor": floor_part}
    for r in range(rounds):
        part = range(r * n // rounds, (r + 1) * n // rounds)
        for side in ("store", "floor") if r % 2 == 0 else ("floor", "store"):
            started = time.perf_counter()
            sides[side](part)
            seconds[side] += time.perf_counter() - started
    return seconds["store"], seconds["floor"]


def measure(label: str, url: str, floor_url: str, n: int, rounds: int = 6) -> dict[str, Figures]:
    """Store and floor figures on one backend; prints three lines."""
    rounds = max(1, min(rounds, n))
    with tempfile.TemporaryDirectory() as var:
        settings = load_settings(
            {"VAR_DIR": var, "DATABASE_URL": url, "PII_KEY": Fernet.generate_key().decode()}
        )
        store = TicketStore(url, settings=settings)
        floor = Floor(floor_url)
        try:
            numbers: list[str] = []
            floor_numbers: list[str] = []

            def store_creates(part: range) -> None:
                numbers.extend(store.create(_new(i)).number for i in part)

            def floor_creates(part: range) -> None:
                floor_numbers.extend(floor.create(i) for i in part)

            def store_updates(part: range) -> None:
                for i in part:
                    store.add_note(numbers[i], "跟进", STAFF)

            def floor_updates(part: range) -> None:
                for i in part:
                    floor.update(floor_numbers[i])

            create_s = _alternate(rounds, n, store_creates, floor_creates)
            update_s = _alternate(rounds, n, store_updates, floor_updates)
            list_ms: dict[str, list[float]] = {"store": [], "floor": []}
            for r in range(LIST_REPEATS):
                for side in ("store", "floor") if r % 2 == 0 else ("floor", "store"):
                    started = time.perf_counter()
                    rows = store.list(limit=50) if side == "store" else floor.list(50)
                    list_ms[side].append((time.perf_counter() - started) * 1000)
                    assert len(rows) == min(50, n)
            started = time.perf_counter()
            problems = store.verify_audit()
            verify_ms = (time.perf_counter() - started) * 1000
            if floor.count() != n:
                raise RuntimeError(f"floor holds {floor.count()} rows, expected {n}")
        finally:
            floor.drop()
            store.dispose()
    figures = {
        side: Figures(n / create_s[k], n / update_s[k], statistics.median(list_ms[side]))
        for k, side in enumerate(("store", "floor"))
    }
    ours, base = figures["store"], figures["floor"]
    for side, f in figures.items():
        print(
            f"{label:8s} {side:5s} creates/s {f.creates_per_s:7.1f}   "
            f"updates/s {f.updates_per_s:7.1f}   list(50) {f.list_ms:6.1f} ms"
            + (f"   verify {n} chains {verify_ms:7.1f} ms" if side == "store" else "")
            + (f"   AUDIT PROBLEMS {len(problems)}" if side == "store" and problems else "")
        )
    print(
        f"{label:8s} ratio store/floor: throughput creates "
        f"{ours.creates_per_s / base.creates_per_s:.2f}x  updates "
        f"{ours.updates_per_s / base.updates_per_s:.2f}x   "
        f"list(50) latency {ours.list_ms / base.list_ms:.2f}x",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="tickets created and updated")
    parser.add_argument("--rounds", type=int, default=6, help="store/floor alternations")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"{args.n} tickets, store vs bare-table floor, list(50) median of {LIST_REPEATS}")
    with tempfile.TemporaryDirectory() as tmp:
        measure(
            "sqlite",
            f"sqlite:///{Path(tmp) / 'tickets.db'}",
            f"sqlite:///{Path(tmp) / 'floor.db'}",
            args.n,
            args.rounds,
        )
    admin = create_engine(args.pg_url, future=True)
    schema = f"tickets_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # a benchmark reports, it does not fail the run
        print(f"postgres   skipped: {exc.__class__.__name__}: {exc}".splitlines()[0])
        admin.dispose()
        return
    try:
        url = f"{args.pg_url}?options=-csearch_path%3D{schema}"
        measure("postgres", url, url, args.n, args.rounds)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
