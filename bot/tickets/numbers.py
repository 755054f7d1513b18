"""Ticket numbers: ``GD20261127-0042``, short enough to read out on the phone.

The per-day counter lives in a table row updated atomically inside the
creating transaction (``INSERT ... ON CONFLICT DO UPDATE``), so concurrent
processes never hand out the same number and a rolled-back creation does not
burn one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bot.tickets.schema import counters
from nlu.identifiers import ticket_number

__all__ = ["format_number", "next_number", "normalize_ticket_number"]



def format_number(prefix: str, day: str, counter: int) -> str:
    return f"{prefix}{day}-{counter:04d}"


def normalize_ticket_number(text: str | None, prefix: str | None = None) -> str | None:
    """What a user typed or said as a ticket number, canonical, or None.

    The syntax (spoken digits, odd dashes, full-width letters) is
    :func:`nlu.identifiers.ticket_number`'s; a missing prefix is the operator's
    (``TICKET_PREFIX``) unless ``prefix`` is given.
    """
    if prefix is None:
        from bot.settings import get_settings

        prefix = get_settings().ticket_prefix
    return ticket_number(text, prefix)


def next_number(conn: Connection, prefix: str, local_day: str) -> str:
    """Reserve the next number of ``local_day`` inside the caller's transaction."""
    key = f"{prefix}{local_day}"
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(counters).values(day=key, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[counters.c.day], set_={"last": counters.c.last + 1}
    )
    conn.execute(stmt)
    last = conn.execute(select(counters.c.last).where(counters.c.day == key)).scalar_one()
    return format_number(prefix, local_day, last)
