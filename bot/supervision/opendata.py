"""Open data (政务数据开放): ticket counts anyone may download, with nothing personal in them.

What is published: per period (day, week, month or the whole range) and per
value of one dimension — category, district, channel, status — the number of
tickets created and the median resolution time (receipt → 办结, hours), plus
the period's total. Nothing else: no ticket numbers, no free text, no
departments' staff, no personal data; every value comes from a closed list
(the routing table's categories, the national list of districts and
``data/districts.yml``, channel names, statuses), never from what a citizen typed.

Small cells are suppressed (k-anonymity style threshold, ``K`` = 5):

1. **Primary**: a cell with 1 … k−1 tickets is suppressed. Suppressed cells are
   **dropped** from every output, like cells with 0 tickets: a listed ``<5``
   would tell that someone of that category, district and day filed a ticket.
2. **Small totals**: a period whose total is below k is suppressed whole
   (total and every cell), since any breakdown of it is small.
3. **Complementary**: in each (period, dimension) group the suppressed cells
   together hold at least k tickets — smallest published cells are suppressed
   until they do — so the total minus the published cells is never a small
   number (two hidden cells summing to 2 would reveal two single tickets).
4. **Medians** are published only for cells with at least k closed tickets
   (a median of 1–4 durations is nearly an individual's).

Windows are whole local days that ended at least one day ago
(:func:`latest_until`): a window ending today would change between two
downloads, and the difference of two snapshots would single out the tickets
filed in between.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from bot.supervision.districts import district_table
from bot.supervision.stats import NONE_LABEL, Fact
from bot.supervision.texts import public_texts
from bot.tickets.models import Status

K = 5
DIMENSIONS = ("category", "district", "channel", "status")
PERIODS = ("day", "week", "month", "all")
STATUSES = frozenset(status.value for status in Status)
_CHANNEL = re.compile(r"^[a-z0-9_]{1,32}$")
OTHER = public_texts().other
FIELDS = ("period", "dimension", "value", "tickets", "median_resolution_hours")
UTC = timezone.utc


@dataclass
class Cell:
    period: str
    dimension: str
    value: str
    tickets: int
    closed_hours: list[float]
    suppressed: bool = False

    def median(self, k: int) -> float | None:
        if self.suppressed or len(self.closed_hours) < k:
            return None
        return round(statistics.median(self.closed_hours), 1)


def period_key(day: date, period: str, since: date) -> str:
    if period == "day":
        return day.isoformat()
    if period == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    if period == "month":
        return day.replace(day=1).isoformat()
    return since.isoformat()


def _safe_value(dimension: str, raw: str, categories: frozenset[str]) -> str:
    """Only values from closed lists reach the output."""
    if dimension == "category":
        return raw if raw in categories or raw == NONE_LABEL else OTHER
    if dimension == "channel":
        return raw if _CHANNEL.match(raw) else "other"
    if dimension == "status":
        return raw if raw in STATUSES else "other"
    # district: a name of the national list or of data/districts.yml, never typed text
    return raw if district_table().is_label(raw) else OTHER


def aggregate(
    facts: Sequence[Fact],
    *,
    since: date,
    until: date,
    categories: frozenset[str],
    period: str = "day",
    k: int = K,
) -> list[Cell]:
    """The suppressed table for tickets created on [since, until] (local days)."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    cells: dict[tuple[str, str, str], Cell] = {}

    def add(key: tuple[str, str, str], hours: float | None) -> None:
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = Cell(*key, tickets=0, closed_hours=[])
        cell.tickets += 1
        if hours is not None:
            cell.closed_hours.append(hours)

    for f in facts:
        if not since <= f.day <= until:
            continue
        p = period_key(f.day, period, since)
        hours = (
            (f.closed_at - f.created_at).total_seconds() / 3600
            if f.closed_at is not None and f.status == "closed"
            else None
        )
        add((p, "all", "all"), hours)
        for dim in DIMENSIONS:
            add((p, dim, _safe_value(dim, f.value(dim), categories)), hours)
    _suppress(list(cells.values()), k)
    order = {d: i for i, d in enumerate(("all", *DIMENSIONS))}
    return sorted(cells.values(), key=lambda c: (c.period, order[c.dimension], c.value))


def _suppress(cells: list[Cell], k: int) -> None:
    groups: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    totals: dict[str, Cell] = {}
    for cell in cells:
        if cell.dimension == "all":
            totals[cell.period] = cell
        else:
            groups[(cell.period, cell.dimension)].append(cell)
    for cell in cells:  # 1. primary
        if cell.tickets < k:
            cell.suppressed = True
    for (p, _), members in groups.items():  # 2. small totals suppress the whole period
        if totals[p].suppressed:
            for cell in members:
                cell.suppressed = True
    for members in groups.values():  # 3. complementary: hidden cells hold >= k together
        hidden = sum(c.tickets for c in members if c.suppressed)
        shown = sorted((c for c in members if not c.suppressed), key=lambda c: c.tickets)
        while 0 < hidden < k and shown:
            cell = shown.pop(0)
            cell.suppressed = True
            hidden += cell.tickets


def latest_until(now: datetime, tz: Any) -> date:
    """The last day a window may end on: whole days that ended at least one day ago."""
    return (now.astimezone(tz) - timedelta(days=1)).date() - timedelta(days=1)


def check_window(since: date, until: date, now: datetime, tz: Any) -> None:
    """Refuse a window that is not whole days ended at least a day ago (ValueError)."""
    last = latest_until(now, tz)
    if until > last:
        raise ValueError(
            f"until must be {last.isoformat()} or earlier: open data covers whole days "
            "that ended at least one day ago"
        )
    if since > until:
        raise ValueError("since must not be after until")


def rows(cells: Sequence[Cell], k: int = K) -> list[dict[str, Any]]:
    """The published cells only: a suppressed cell is absent, as a zero cell is."""
    return [
        {
            "period": c.period,
            "dimension": c.dimension,
            "value": c.value,
            "tickets": c.tickets,
            "median_resolution_hours": c.median(k),
        }
        for c in cells
        if not c.suppressed
    ]


def to_csv(cells: Sequence[Cell], k: int = K) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    for r in rows(cells, k):
        median = r["median_resolution_hours"]
        writer.writerow(
            [
                r["period"],
                r["dimension"],
                r["value"],
                r["tickets"],
                "" if median is None else median,
            ]
        )
    return out.getvalue()


def to_json(
    cells: Sequence[Cell], *, since: date, until: date, period: str, k: int = K, now: datetime
) -> str:
    document = {
        "title": public_texts().open_data_title,
        "generated_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "period": period,
        "k": k,
        "suppression": (
            f"cells with 1-{k - 1} tickets are left out, like empty ones; a period whose "
            f"total is below {k} is left out whole; in each group the left-out cells hold "
            f"at least {k} tickets together; medians need {k} closed tickets; windows are "
            "whole days that ended at least one day ago"
        ),
        "fields": list(FIELDS),
        "rows": rows(cells, k),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def export(
    load: Callable[[datetime, datetime], Sequence[Fact]],
    tz: Any,
    *,
    since: date,
    until: date,
    categories: frozenset[str],
    period: str = "day",
    fmt: str = "csv",
    now: datetime,
    k: int = K,
) -> str:
    """The whole export as text (CSV or JSON); ``load`` returns facts of [start, end).

    Raises ValueError for a window that is not over yet (:func:`check_window`).
    """
    check_window(since, until, now, tz)
    start = datetime.combine(since, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    cells = aggregate(
        load(start, end), since=since, until=until, categories=categories, period=period, k=k
    )
    if fmt == "json":
        return to_json(cells, since=since, until=until, period=period, k=k, now=now)
    if fmt == "csv":
        return to_csv(cells, k)
    raise ValueError("format must be csv or json")
