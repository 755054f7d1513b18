"""Reads of the ticket tables for figures: statistics, hot spots, metrics, hotline contacts.

The one place outside :mod:`bot.tickets.store` that runs SQL on the ticket
tables, so their shape can change behind it. These return plain rows or
numbers, not masked views: they feed aggregates (counts, medians, clusters),
and the callers mask any text they keep (``bot.supervision.tickets`` does at
once). A ticket's own page reads :meth:`TicketStore.get` / :meth:`TicketStore.find`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, Row

from bot.tickets.lifecycle import ACTIVE, OPEN
from bot.tickets.schema import events, resolved_contacts, tickets
from bot.tickets.times import to_db


def statistics_rows(
    engine: Engine, since: datetime | None = None, until: datetime | None = None
) -> list[Row[Any]]:
    """Tickets created in [since, until), oldest first, with their first response
    (the first start or reply), for the dashboard's figures."""
    first = (
        select(events.c.ticket_id, func.min(events.c.at).label("first_at"))
        .where(events.c.action.in_(["start", "reply"]))
        .group_by(events.c.ticket_id)
        .subquery()
    )
    t = tickets.c
    stmt = select(
        t.number, t.created_at, t.kind, t.status, t.category, t.department, t.channel,
        t.place, t.summary, t.deadline, t.paused_at, t.escalated_at, t.replied_at,
        t.closed_at, t.rating, first.c.first_at,
    ).select_from(tickets.outerjoin(first, first.c.ticket_id == t.id))  # fmt: skip
    if since is not None:
        stmt = stmt.where(t.created_at >= to_db(since))
    if until is not None:
        stmt = stmt.where(t.created_at < to_db(until))
    with engine.connect() as conn:
        return list(conn.execute(stmt.order_by(t.created_at)).all())


def open_cases(engine: Engine, kinds: tuple[str, ...]) -> tuple[list[Row[Any]], Counter[str]]:
    """Open tickets of ``kinds`` (number, texts, place, facts, created_at), and how many
    tickets were merged into each (citizens who reported the same thing)."""
    t = tickets.c
    merged = (
        select(t.duplicate_of, func.count().label("n"))
        .where(t.duplicate_of.is_not(None))
        .group_by(t.duplicate_of)
    )
    stmt = select(t.number, t.summary, t.description, t.place, t.facts, t.created_at).where(
        t.status.in_([s.value for s in OPEN]), t.kind.in_(kinds)
    )
    with engine.connect() as conn:
        support = Counter({r.duplicate_of: int(r.n) for r in conn.execute(merged)})
        return list(conn.execute(stmt).all()), support


def change_marker(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever a ticket is created or changed: a cache key for derived figures."""
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count(), func.max(tickets.c.updated_at))).one())


@dataclass(frozen=True)
class Counts:
    """What the metrics endpoint reports from the store."""

    created_per_channel: dict[str, int]
    #: running clocks past their deadline (replied tickets are no longer late)
    breached_open: int
    escalated: int


def counts(engine: Engine, now: datetime) -> Counts:
    t = tickets.c
    with engine.connect() as conn:
        created = conn.execute(select(t.channel, func.count()).group_by(t.channel)).all()
        breached = conn.execute(
            select(func.count()).where(
                t.status.in_([s.value for s in ACTIVE]),
                t.paused_at.is_(None),
                t.deadline < to_db(now),
            )
        ).scalar_one()
        escalated = conn.execute(
            select(func.count()).where(t.escalated_at.is_not(None))
        ).scalar_one()
    return Counts({str(c): int(n) for c, n in created}, int(breached), int(escalated))


def resolved_contact(engine: Engine, idempotency_key: str) -> Row[Any] | None:
    """One resolved contact (an inquiry answered on the call) by its key; nothing personal."""
    with engine.connect() as conn:
        return conn.execute(
            select(resolved_contacts).where(resolved_contacts.c.idempotency_key == idempotency_key)
        ).first()
