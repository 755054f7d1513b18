"""How the ticket database keeps time: naive UTC stored, aware datetimes everywhere else.

Naive UTC is portable between SQLite and PostgreSQL; these three conversions are
the only place that knows it (the store, live sessions and the queries use them).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import overload
from zoneinfo import ZoneInfo

UTC = timezone.utc


def to_db(value: datetime) -> datetime:
    """Aware -> naive UTC, the stored form."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the ticket store; pass an aware one")
    return value.astimezone(UTC).replace(tzinfo=None)


@overload
def aware(value: datetime) -> datetime: ...


@overload
def aware(value: None) -> None: ...


def aware(value: datetime | None) -> datetime | None:
    """Stored naive UTC -> aware UTC (a NULL stays NULL)."""
    return value.replace(tzinfo=UTC) if value is not None else None


def local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """Stored naive UTC -> aware local time, how staff and citizens read it."""
    return value.replace(tzinfo=UTC).astimezone(tz) if value is not None else None
