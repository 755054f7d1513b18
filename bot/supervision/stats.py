"""Dashboard numbers: volume, response/resolution times, SLA compliance, satisfaction.

One narrow ``select`` over ``tickets`` (plus the first department action per
ticket from ``ticket_events``) loads the period's facts; the groupings happen in
Python because the district is derived from free text (``data/districts.yml``)
and local days depend on ``TIMEZONE``, neither of which SQL can do portably
across SQLite and PostgreSQL. Thousands of tickets take milliseconds.

Definitions (also in ``docs/supervision.md``):

* **response time**: receipt → the department's first ``start`` or ``reply``.
* **resolution time**: receipt → 办结 (``closed_at``), closed tickets only.
* **SLA compliance** of a department: on time / (on time + breached), where
  on time = replied no later than the deadline, breached = replied after it or
  still active past it (paused clocks are not breached). Tickets still within
  their deadline are pending and not counted.
* **satisfaction**: mean 回访 score (1–5) over rated tickets; "satisfied" = 4–5.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from bot.supervision.districts import DistrictTable, district_table
from bot.tickets.queries import statistics_rows

UTC = timezone.utc
ACTIVE = frozenset({"received", "dispatched", "in_progress"})
OPEN = ACTIVE | {"replied", "follow_up"}
DIMENSIONS = ("category", "department", "district", "channel")
#: label of a ticket without a category or department (shown as such, not dropped)
NONE_LABEL = "未分类"


@dataclass(frozen=True)
class Fact:
    """What the statistics need of one ticket: no free text, no personal data."""

    number: str
    day: date
    created_at: datetime
    kind: str
    status: str
    category: str
    department: str
    channel: str
    district: str
    deadline: datetime
    paused: bool
    escalated_at: datetime | None
    replied_at: datetime | None
    closed_at: datetime | None
    first_response_at: datetime | None
    rating: int | None

    def value(self, dimension: str) -> str:
        return str(getattr(self, dimension))


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def load_facts(
    engine: Engine,
    tz: ZoneInfo,
    since: datetime | None = None,
    until: datetime | None = None,
    table: DistrictTable | None = None,
) -> list[Fact]:
    """Tickets created in [since, until) (aware datetimes), as :class:`Fact` rows."""
    table = table or district_table()
    facts = []
    for r in statistics_rows(engine, since, until):
        created = _aware(r.created_at)
        assert created is not None
        facts.append(
            Fact(
                number=r.number,
                day=created.astimezone(tz).date(),
                created_at=created,
                kind=r.kind,
                status=r.status,
                category=r.category or NONE_LABEL,
                department=r.department or NONE_LABEL,
                channel=r.channel,
                # the place first; the summary only when the place names no district
                district=table.of(r.place, r.summary),
                deadline=_aware(r.deadline),  # type: ignore[arg-type]
                paused=r.paused_at is not None,
                escalated_at=_aware(r.escalated_at),
                replied_at=_aware(r.replied_at),
                closed_at=_aware(r.closed_at),
                first_response_at=_aware(r.first_at),
                rating=r.rating,
            )
        )
    return facts


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def volume(facts: Sequence[Fact], dimension: str, start: date, end: date) -> dict[str, Any]:
    """Tickets per local day per value of ``dimension`` (a chart's series and its table)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    days = days_between(start, end)
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for f in facts:
        if f.day in index:
            series[f.value(dimension)][index[f.day]] += 1
    ordered = sorted(series.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return {
        "dimension": dimension,
        "days": [d.isoformat() for d in days],
        "series": [{"name": k, "counts": v, "total": sum(v)} for k, v in ordered],
        "total": sum(sum(v) for _, v in ordered),
    }


def _hours(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return (b - a).total_seconds() / 3600


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


def sla_outcome(f: Fact, now: datetime) -> str:
    """on_time | breached | pending (see the module docstring)."""
    if f.replied_at is not None:
        return "on_time" if f.replied_at <= f.deadline else "breached"
    if f.status in ACTIVE and not f.paused and now > f.deadline:
        return "breached"
    return "pending"


def departments(facts: Sequence[Fact], now: datetime) -> list[dict[str, Any]]:
    """Per department: volume, response/resolution medians, SLA compliance, satisfaction."""
    groups: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        groups[f.department].append(f)
    rows: list[dict[str, Any]] = []
    for name, items in groups.items():
        outcomes = Counter(sla_outcome(f, now) for f in items)
        judged = outcomes["on_time"] + outcomes["breached"]
        ratings = [f.rating for f in items if f.rating]
        rows.append(
            {
                "department": name,
                "tickets": len(items),
                "open": sum(1 for f in items if f.status in OPEN),
                "closed": sum(1 for f in items if f.status == "closed"),
                "median_response_hours": _median(
                    _hours(f.created_at, f.first_response_at) for f in items
                ),
                "median_resolution_hours": _median(
                    _hours(f.created_at, f.closed_at) for f in items
                ),
                "on_time": outcomes["on_time"],
                "breached": outcomes["breached"],
                "sla_compliance": round(100 * outcomes["on_time"] / judged, 1) if judged else None,
                "rated": len(ratings),
                "mean_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
                "satisfied_pct": (
                    round(100 * sum(1 for r in ratings if r >= 4) / len(ratings), 1)
                    if ratings
                    else None
                ),
            }
        )
    rows.sort(key=lambda r: (-(r["sla_compliance"] or -1), -r["tickets"], r["department"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def overdue(facts: Sequence[Fact], now: datetime) -> list[Fact]:
    """Active tickets past their deadline with a running clock, most overdue first."""
    late = [f for f in facts if f.status in ACTIVE and not f.paused and f.deadline < now]
    return sorted(late, key=lambda f: f.deadline)


def escalated(facts: Sequence[Fact]) -> list[Fact]:
    """Open tickets under 督办, most recent escalation first."""
    hits = [f for f in facts if f.escalated_at is not None and f.status in OPEN]
    return sorted(hits, key=lambda f: f.escalated_at or f.created_at, reverse=True)
