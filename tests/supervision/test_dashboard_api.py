"""The dashboard's numbers (JSON API and CSV) against SQL counts, on SQLite and PostgreSQL.

The browser test draws the same numbers in Chromium on SQLite only; this one
skips the browser and checks every figure the SQL-reading code produces —
volume per dimension, the SLA league (on time, breached, compliance, ratings,
response medians), the overdue and 督办 lists, hot spots with the merged-ticket
support, the surge of today — on both backends, because production reads
them from PostgreSQL. The expected values are computed here with plain
SQLAlchemy queries over the tables, not with the code under test.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import and_, func, or_, select, text

from bot.supervision import surge
from bot.tickets import Actor, TicketStore
from bot.tickets.schema import events, tickets
from tests.supervision.conftest import NOW, Clock, seed
from tests.supervision.helpers import login
from tests.supervision.test_warnings import _seed_surge

UTC = timezone.utc
SINCE = (NOW - timedelta(days=29)).date()
ACTIVE = ("received", "dispatched", "in_progress")
OPEN = (*ACTIVE, "replied", "follow_up")


def _db(value: datetime) -> datetime:
    """How the store keeps times: naive UTC."""
    return value.astimezone(UTC).replace(tzinfo=None)


START = _db(datetime.combine(SINCE, datetime.min.time(), tzinfo=NOW.tzinfo))
IN_PERIOD = tickets.c.created_at >= START


def _grouped(store: TicketStore, column: Any, *where: Any) -> dict[str, int]:
    stmt = select(column, func.count()).where(IN_PERIOD, *where).group_by(column)
    with store.engine.connect() as conn:
        return {(k or "未分类"): int(n) for k, n in conn.execute(stmt)}


def _response_medians(store: TicketStore) -> dict[str, float]:
    """Median hours receipt → first start/reply per department, from the events table."""
    first = (
        select(events.c.ticket_id, func.min(events.c.at).label("first_at"))
        .where(events.c.action.in_(["start", "reply"]))
        .group_by(events.c.ticket_id)
        .subquery()
    )
    stmt = select(tickets.c.department, tickets.c.created_at, first.c.first_at).where(
        IN_PERIOD, tickets.c.id == first.c.ticket_id
    )
    hours: dict[str, list[float]] = defaultdict(list)
    with store.engine.connect() as conn:
        for department, created, first_at in conn.execute(stmt):
            hours[department or "未分类"].append((first_at - created).total_seconds() / 3600)
    return {d: round(statistics.median(h), 2) for d, h in hours.items()}


def test_dashboard_api_numbers_are_the_sql_counts(
    app: Any, store: TicketStore, clock: Clock
) -> None:
    seed(store, clock, 150, days=30)
    _seed_surge(store, clock)
    # two citizens report what an open ticket already says: support for its hot spot
    staff = Actor("supervisor", "seed")
    by_text: dict[str, list[str]] = defaultdict(list)
    for v in store.list(limit=None):
        if v.status.value in ("dispatched", "in_progress"):
            by_text[v.summary].append(v.number)
    group = max(by_text.values(), key=len)
    assert len(group) >= 4  # two stay open with the primary: still a hot spot
    primary, same_place = group[0], group[1:3]
    for number in same_place:
        store.merge(number, primary, staff)
    clock.now = NOW
    surge.check(store.engine, store.tz, NOW)

    boss, _ = login(app, "boss")
    api = boss.get("/api/supervision/dashboard")
    assert api.status_code == 200, api.text[:300]
    data = api.json()
    assert data["since"] == SINCE.isoformat() and data["until"] == NOW.date().isoformat()

    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).where(IN_PERIOD)).scalar_one()
    assert data["total"] == total > 150

    for dim, column in (
        ("category", tickets.c.category),
        ("department", tickets.c.department),
        ("channel", tickets.c.channel),
    ):
        chart = {s["name"]: s["total"] for s in data["volume"][dim]["series"]}
        assert chart == _grouped(store, column), dim
        assert len(data["volume"][dim]["days"]) == 30
    for district, n in ((s["name"], s["total"]) for s in data["volume"]["district"]["series"]):
        with store.engine.connect() as conn:
            like = conn.execute(
                select(func.count()).where(IN_PERIOD, tickets.c.place.like(f"{district}%"))
            ).scalar_one()
        assert n == like, district

    # the SLA league
    now = _db(NOW)
    t = tickets.c
    on_time = _grouped(store, t.department, t.replied_at <= t.deadline)
    breached = _grouped(
        store,
        t.department,
        or_(
            t.replied_at > t.deadline,
            and_(
                t.replied_at.is_(None),
                t.status.in_(ACTIVE),
                t.paused_at.is_(None),
                t.deadline < now,
            ),
        ),
    )
    closed = _grouped(store, t.department, t.status == "closed")
    per_department = _grouped(store, t.department)
    with store.engine.connect() as conn:
        ratings = {
            (d or "未分类"): (float(mean), int(n))
            for d, mean, n in conn.execute(
                select(t.department, func.avg(t.rating), func.count())
                .where(IN_PERIOD, t.rating > 0)
                .group_by(t.department)
            )
        }
    medians = _response_medians(store)
    league = {r["department"]: r for r in data["departments"]}
    assert set(league) == set(per_department) and len(ratings) >= 5
    assert sum(on_time.values()) > 10 and sum(breached.values()) > 10
    for department, row in league.items():
        good, bad = on_time.get(department, 0), breached.get(department, 0)
        assert row["tickets"] == per_department[department], department
        assert row["closed"] == closed.get(department, 0), department
        assert (row["on_time"], row["breached"]) == (good, bad), department
        expected = round(100 * good / (good + bad), 1) if good + bad else None
        assert row["sla_compliance"] == expected, department
        mean, rated = ratings.get(department, (None, 0))
        assert row["rated"] == rated, department
        assert row["mean_rating"] == (None if mean is None else round(mean, 2)), department
        assert row["median_response_hours"] == medians.get(department), department
    ranked = [r["sla_compliance"] or -1 for r in data["departments"]]
    assert ranked == sorted(ranked, reverse=True)

    # overdue and 督办 lists: every ticket, not only the period's
    with store.engine.connect() as conn:
        overdue = set(
            conn.execute(
                select(t.number).where(
                    t.status.in_(ACTIVE), t.paused_at.is_(None), t.deadline < now
                )
            ).scalars()
        )
        escalated = set(
            conn.execute(
                select(t.number).where(t.escalated_at.is_not(None), t.status.in_(OPEN))
            ).scalars()
        )
        open_numbers = set(conn.execute(select(t.number).where(t.status.in_(OPEN))).scalars())
    assert overdue and escalated
    assert {r["number"] for r in data["overdue"]} == overdue
    deadlines = [r["deadline"] for r in data["overdue"]]
    assert deadlines == sorted(deadlines)
    assert {r["number"] for r in data["escalated"]} == escalated

    # hot spots: open tickets only; merged tickets count as the primary's support
    assert data["hotspots"]
    for spot in data["hotspots"]:
        assert spot["count"] >= 2 and set(spot["ids"]) <= open_numbers
    [holding] = [s for s in data["hotspots"] if primary in s["ids"]]
    assert holding["likes"] == len(same_place) and not set(same_place) & set(holding["ids"])

    # the surge of today and its warning
    assert [(s["category"], s["district"], s["count"]) for s in data["surges_today"]] == [
        ("环境保护", "A2区", 9)
    ]
    assert [(w["district"], w["first_day"]) for w in data["warnings"]] == [
        ("A2区", NOW.date().isoformat())
    ]

    # the CSV download is the league's numbers
    csv_text = boss.get(f"/supervision/csv/departments.csv?since={SINCE}&until={NOW.date()}").text
    lines = csv_text.lstrip("\ufeff").splitlines()
    header = lines[0].split(",")
    for line in lines[1:]:
        cells = dict(zip(header, line.split(","), strict=True))
        row = league[cells["department"]]
        assert int(cells["on_time"]) == row["on_time"] and int(cells["tickets"]) == row["tickets"]


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_postgres_sessions_are_not_utc(store: TicketStore) -> None:
    """The fixture's Shanghai session zone is in force (else the tests above prove less)."""
    with store.engine.connect() as conn:
        assert conn.execute(text("SHOW TimeZone")).scalar_one() == "Asia/Shanghai"
