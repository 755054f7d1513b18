"""Tickets as hot-spot input: open complaints with their place and public support.

Reads through :func:`bot.tickets.queries.open_cases` and masks the free text with
:func:`bot.privacy.mask_text` at once, so nothing downstream ever holds a phone
or 身份证 number. Public support of a ticket = ``facts["likes"]`` when a channel
carries it (message boards) plus the tickets merged into it (each a citizen
who reported the same thing).
"""

from __future__ import annotations

import json
from datetime import timezone

from sqlalchemy.engine import Engine

from bot.privacy import mask_text
from bot.supervision.districts import DistrictTable, district_table
from bot.supervision.hotspots import Doc
from bot.tickets.queries import open_cases

UTC = timezone.utc
COMPLAINT_KINDS = ("complaint", "report", "help", "emergency", "suggestion")


def open_complaints(engine: Engine, table: DistrictTable | None = None) -> list[Doc]:
    table = table or district_table()
    rows, support = open_cases(engine, COMPLAINT_KINDS)
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
