"""Issue 17, item 4: the audit chain covers the ticket row, is keyed, and is anchored outside.

The auditor's probes, each against a worked ticket: department, reply, rating
and summary edited in the database (``audit verify`` said intact); the chain
recomputed by someone with database access (plain sha256, as the old chain
was); the chain recomputed by an insider who also holds the audit key; the
newest events cut off with the ticket row made consistent. Every probe must
make ``citizenbot audit verify`` exit 1 naming the ticket and what changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.tickets import Actor, NewTicket, TicketStore
from bot.tickets.audit import GENESIS, canonical_json, event_hash, snapshot
from bot.tickets.schema import events, tickets
from tests.tickets import conftest as _tickets
from tests.tickets.conftest import run_cli

clock = _tickets.clock
db_url = _tickets.db_url
env = _tickets.env
pg_url = _tickets.pg_url
pii_keys = _tickets.pii_keys
settings = _tickets.settings
sqlite_template = _tickets.sqlite_template
store = _tickets.store

STAFF = Actor("department", "env1", "市生态环境局")


def _worked(store: TicketStore) -> str:
    view = store.create(
        NewTicket(channel="wechat", kind="complaint", summary="工地夜间施工噪音",
                  sender_id="wechat:o-1", phone="13912345678", category="环境保护",
                  category_confidence=0.95)
    )
    store.start(view.number, STAFF)
    store.reply(view.number, "已责令停工", STAFF)
    store.rate(view.number, 2, True, "", Actor.citizen("wechat:o-1"))
    assert store.verify_audit() == []
    return view.number


def _verify_cli(env: dict[str, str]) -> str:
    code, out, err = run_cli(env, "audit", "verify")
    assert code == 1, out + err
    return err


@pytest.mark.parametrize(
    ("field", "value"),
    [("department", "市交通运输局"), ("reply", "已处理完毕，市民满意"), ("rating", 5),
     ("summary", "无")],
)
def test_a_ticket_field_edited_in_the_database_is_named(
    store: TicketStore, env: dict[str, str], field: str, value: Any
) -> None:
    number = _worked(store)
    with store.engine.begin() as conn:
        conn.execute(update(tickets).where(tickets.c.number == number).values({field: value}))
    [problem] = store.verify_audit()
    assert number in problem and field in problem and "edited outside the store" in problem
    assert field in _verify_cli(env)


def _rewrite(store: TicketStore, number: str, key: bytes | None, drop: int = 0) -> None:
    """Recompute the ticket's chain after an edit, as an attacker with write access would."""
    with store.engine.begin() as conn:
        row = conn.execute(select(tickets).where(tickets.c.number == number)).one()
        rows = conn.execute(
            select(events).where(events.c.ticket_id == row.id).order_by(events.c.seq)
        ).all()
        if drop:
            for gone in rows[-drop:]:
                conn.execute(events.delete().where(events.c.id == gone.id))
            rows = rows[:-drop]
        prev = GENESIS
        current = dict(row._mapping)
        for event in rows:
            values = dict(event._mapping)
            if key is None:
                values["state"] = None  # the old, unkeyed scheme anyone can compute
            else:
                values["state"] = canonical_json(snapshot(key, current))
            values["prev_hash"] = prev
            values["hash"] = event_hash(number, values, prev, key)
            conn.execute(update(events).where(events.c.id == event.id).values(
                state=values["state"], prev_hash=prev, hash=values["hash"]))
            prev = values["hash"]
        conn.execute(update(tickets).where(tickets.c.id == row.id).values(
            last_event_hash=prev, event_count=len(rows)))


def test_a_chain_recomputed_without_the_key_is_refused(
    store: TicketStore, env: dict[str, str]
) -> None:
    number = _worked(store)
    with store.engine.begin() as conn:
        conn.execute(update(tickets).where(tickets.c.number == number).values(rating=5))
    _rewrite(store, number, key=None)
    [problem] = store.verify_audit()
    assert number in problem and "checkpointed event" in problem
    assert number in _verify_cli(env)


def test_a_chain_recomputed_with_the_key_is_caught_by_the_checkpoint(
    store: TicketStore, env: dict[str, str]
) -> None:
    number = _worked(store)
    with store.engine.begin() as conn:
        conn.execute(update(tickets).where(tickets.c.number == number)
                     .values(department="市交通运输局"))
    _rewrite(store, number, key=store.audit_key)
    [problem] = store.verify_audit()
    assert number in problem and "history was rewritten" in problem


def test_cutting_the_newest_events_off_is_caught(store: TicketStore, env: dict[str, str]) -> None:
    number = _worked(store)
    _rewrite(store, number, key=store.audit_key, drop=2)
    [problem] = store.verify_audit()
    assert number in problem and "missing" in problem
    assert number in _verify_cli(env)


def test_every_event_snapshots_every_field(store: TicketStore) -> None:
    _worked(store)
    with store.engine.connect() as conn:
        states = conn.execute(select(events.c.state)).scalars().all()
        columns = set(tickets.c.keys()) - {"event_count", "last_event_hash", "search_text"}
    assert states and all(set(json.loads(s)) == columns for s in states)
    assert "13912345678" not in str(states)
