"""Ticket store throughput on SQLite and PostgreSQL: creates/s and updates/s.

Numbers, not assertions (the machine is shared). Run with
``.venv/bin/python bench/tickets/run.py [--n 300] [--pg-url URL]``; the
PostgreSQL part uses a throw-away schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.settings import load_settings
from bot.tickets import Actor, NewTicket, Role, TicketStore

STAFF = Actor(Role.DEPARTMENT, "bench", "市生态环境局")


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


def measure(label: str, url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as var:
        settings = load_settings(
            {"VAR_DIR": var, "DATABASE_URL": url, "PII_KEY": Fernet.generate_key().decode()}
        )
        store = TicketStore(url, settings=settings)
        started = time.perf_counter()
        numbers = [store.create(_new(i)).number for i in range(n)]
        create_rate = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for number in numbers:
            store.add_note(number, "跟进", STAFF)
        update_rate = n / (time.perf_counter() - started)
        started = time.perf_counter()
        store.list(limit=50)
        list_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        problems = store.verify_audit()
        verify_ms = (time.perf_counter() - started) * 1000
        store.dispose()
    print(
        f"{label:10s} creates/s {create_rate:7.1f}   updates/s {update_rate:7.1f}   "
        f"list(50) {list_ms:6.1f} ms   verify {n} chains {verify_ms:7.1f} ms"
        + (f"   AUDIT PROBLEMS {len(problems)}" if problems else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{Path(tmp) / 'tickets.db'}", args.n)
    admin = create_engine(args.pg_url, future=True)
    schema = f"tickets_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # a benchmark reports, it does not fail the run
        print(f"postgres   skipped: {exc.__class__.__name__}: {exc}".splitlines()[0])
        return
    try:
        measure("postgres", f"{args.pg_url}?options=-csearch_path%3D{schema}", args.n)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
