"""Ticket numbers: ``GD20261127-0042``, short enough to read out on the phone.

The per-day counter lives in a table row updated atomically inside the
creating transaction (``INSERT ... ON CONFLICT DO UPDATE``), so concurrent
processes never hand out the same number and a rolled-back creation does not
burn one.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bot.tickets.schema import counters

__all__ = ["format_number", "next_number", "normalize_ticket_number"]

#: digits as people say or type them: 零一二…, 〇, 幺 (telephone "one"), 两
_SPOKEN_DIGITS = str.maketrans("〇零一二三四五六七八九幺两", "0012345678912")
_NUMBER_RE = re.compile(r"([A-Z]{0,6})(\d{8})(\d{4,6})")


def format_number(prefix: str, day: str, counter: int) -> str:
    return f"{prefix}{day}-{counter:04d}"


def normalize_ticket_number(text: str | None, prefix: str | None = None) -> str | None:
    """Turn what a user typed or said into the canonical number, or None.

    Accepts lower case, full-width letters and digits, spaces, missing or odd
    dashes and spoken digits (``gd２０２６1127 0042``, ``二零二六一一二七零零四二``).
    A missing prefix is filled with the configured one.
    """
    if not text:
        return None
    value = unicodedata.normalize("NFKC", text).translate(_SPOKEN_DIGITS).upper()
    value = re.sub(r"[\s\-_–—.·/#:]+", "", value)
    value = value.removeprefix("NO").removeprefix("工单号").removeprefix("工单")
    match = _NUMBER_RE.fullmatch(value)
    if not match:
        return None
    letters, day, counter = match.groups()
    if not _plausible_day(day):
        return None
    if not letters:
        if prefix is None:
            from bot.settings import get_settings

            prefix = get_settings().ticket_prefix
        letters = prefix.upper()
    return f"{letters}{day}-{counter}"


def _plausible_day(day: str) -> bool:
    try:
        datetime.strptime(day, "%Y%m%d")
    except ValueError:
        return False
    return True


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
