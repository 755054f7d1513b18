"""Tickets as hot-spot input: open complaints with their place and public support.

Reads ``tickets`` directly (Core ``select``) and masks the free text with
:func:`bot.privacy.mask_text` at once, so nothing downstream ever holds a phone
or 身份证 number. Public support of a ticket = ``facts["likes"]`` when a channel
carries it (message boards) plus the tickets merged into it (each a citizen
who reported the same thing).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timezone

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.privacy import mask_text
from bot.supervision.districts import DistrictTable, district_table
from bot.supervision.hotspots import Doc
from bot.tickets.schema import tickets

UTC = timezone.utc
OPEN = ("received", "dispatched", "in_progress", "replied", "follow_up")
COMPLAINT_KINDS = ("complaint", "report", "help", "emergency", "suggestion")


def open_complaints(engine: Engine, table: DistrictTable | None = None) -> list[Doc]:
    table = table or district_table()
    t = tickets.c
    merged = (
        select(t.duplicate_of, func.count().label("n"))
        .where(t.duplicate_of.is_not(None))
        .group_by(t.duplicate_of)
    )
    stmt = select(t.number, t.summary, t.description, t.place, t.facts, t.created_at).where(
        t.status.in_(OPEN), t.kind.in_(COMPLAINT_KINDS)
    )
    with engine.connect() as conn:
        support = Counter({r.duplicate_of: r.n for r in conn.execute(merged)})
        rows = conn.execute(stmt).all()
    docs = []
    for r in rows:
        try:
            facts = json.loads(r.facts or "{}")
        except ValueError:
            facts = {}
        likes = facts.get("likes") if isinstance(facts, dict) else None
        text = mask_text(f"{r.place or ''} {r.summary}。{r.description or ''}")
        docs.append(
            Doc(
                id=r.number,
                text=text,
                district=table.of(r.place, r.summary, r.description),
                time=r.created_at.replace(tzinfo=UTC),
                likes=(int(likes) if isinstance(likes, int) else 0) + support[r.number],
            )
        )
    return docs
