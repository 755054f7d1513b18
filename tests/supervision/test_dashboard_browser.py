"""The supervisor dashboard in a real browser: every chart drawn, every number from SQL.

The console runs in-process under a real uvicorn server (a thread) on the
seeded store with its fixed clock; Chromium (Debian's, via Playwright) signs
in as a supervisor. Screenshots go to ``reports/supervision/``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select

from bot.console.core import load_messages
from bot.settings import ROOT
from bot.supervision import surge
from bot.tickets import TicketStore
from bot.tickets.schema import tickets
from tests.browser import chromium
from tests.supervision.conftest import NOW, PASSWORD, SQLITE_ONLY, Clock, seed
from tests.supervision.test_warnings import _seed_surge

# the browser adds nothing backend-specific; the same numbers are checked on both
# backends without it in test_dashboard_api.py
pytestmark = SQLITE_ONLY

SHOTS = ROOT / "reports" / "supervision"
UTC = timezone.utc
SINCE = (NOW - timedelta(days=29)).date()


@pytest.fixture
def server(app: Any) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture
def page() -> Iterator[Any]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        yield context.new_page()


def _sql_counts(store: TicketStore, column: Any) -> dict[str, int]:
    start = datetime.combine(SINCE, datetime.min.time(), tzinfo=store.tz).astimezone(UTC)
    stmt = (
        select(column, func.count())
        .where(tickets.c.created_at >= start.replace(tzinfo=None))
        .group_by(column)
    )
    with store.engine.connect() as conn:
        return {(k or "未分类"): int(n) for k, n in conn.execute(stmt)}


def _table(page: Any, table_id: str, columns: int = 2) -> dict[str, list[str]]:
    rows = page.eval_on_selector_all(
        f"#{table_id} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )
    return {r[0] if columns == 2 else r[1]: r for r in rows if len(r) > 1}


def _by_channel_name(counts: dict[str, int]) -> dict[str, int]:
    names = load_messages()
    named: dict[str, int] = {}
    for code, n in counts.items():
        name = names.get(f"channel.{code}", names["channel.other"])
        named[name] = named.get(name, 0) + n
    return named


def test_dashboard_charts_show_the_sql_numbers(
    page: Any, server: str, store: TicketStore, clock: Clock
) -> None:
    seed(store, clock, 200, days=30)
    _seed_surge(store, clock)
    surge.check(store.engine, store.tz, NOW)

    page.goto(f"{server}/supervision")
    assert "/login" in page.url
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url("**/supervision")
    page.wait_for_selector("body[data-charts-ready]", state="attached")
    assert int(page.evaluate("document.body.dataset.chartsReady")) == 7
    assert page.eval_on_selector_all("[data-chart] canvas", "c => c.length") >= 7
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    api = page.evaluate(
        "fetch(document.getElementById('dashboard').dataset.api).then(r => r.json())"
    )
    with store.engine.connect() as conn:
        in_period = conn.execute(
            select(func.count()).where(
                tickets.c.created_at
                >= datetime.combine(SINCE, datetime.min.time(), tzinfo=store.tz)
                .astimezone(UTC)
                .replace(tzinfo=None)
            )
        ).scalar_one()
    assert int(page.inner_text("#total-tickets")) == in_period == api["total"]

    for dim, column in (
        ("category", tickets.c.category),
        ("department", tickets.c.department),
        ("channel", tickets.c.channel),
    ):
        expected = _sql_counts(store, column)
        shown = {k: int(v[1]) for k, v in _table(page, f"table-volume-{dim}").items()}
        chart = {s["name"]: sum(s["counts"]) for s in api["volume"][dim]["series"]}
        assert expected == chart, dim  # the API keeps the codes (webchat …)
        if dim == "channel":  # people read names: 网页 is webchat and rest together
            expected = _by_channel_name(expected)
        assert shown == expected, dim
        page.locator(f"#volume-{dim}").screenshot(path=str(SHOTS / f"volume-{dim}.png"))

    # district: the seeded places start with the district name
    shown = {k: int(v[1]) for k, v in _table(page, "table-volume-district").items()}
    for district, n in shown.items():
        start = datetime.combine(SINCE, datetime.min.time(), tzinfo=store.tz).astimezone(UTC)
        with store.engine.connect() as conn:
            sql = conn.execute(
                select(func.count()).where(
                    tickets.c.place.like(f"{district}%"),
                    tickets.c.created_at >= start.replace(tzinfo=None),
                )
            ).scalar_one()
        assert n == sql, district
    page.locator("#volume-district").screenshot(path=str(SHOTS / "volume-district.png"))

    # SLA league and satisfaction per department, against SQL
    rows = _table(page, "table-departments", columns=13)
    with store.engine.connect() as conn:
        on_time = dict(
            conn.execute(
                select(tickets.c.department, func.count())
                .where(tickets.c.replied_at <= tickets.c.deadline)
                .group_by(tickets.c.department)
            ).all()
        )
        ratings = dict(
            conn.execute(
                select(tickets.c.department, func.avg(tickets.c.rating))
                .where(tickets.c.rating > 0)
                .group_by(tickets.c.department)
            ).all()
        )
    assert len(ratings) >= 5
    for department, mean in ratings.items():
        row = rows[department]
        assert int(row[7]) == on_time.get(department, 0)
        assert float(row[11]) == round(float(mean), 2)
    sla_chart = {r["department"]: r["sla_compliance"] for r in api["departments"]}
    for department, row in rows.items():
        value = sla_chart[department]
        assert (row[9] == "—") if value is None else (float(row[9].rstrip("%")) == value)
    page.locator("#departments").screenshot(path=str(SHOTS / "departments.png"))

    # overdue and escalated lists
    with store.engine.connect() as conn:
        overdue = conn.execute(
            select(func.count()).where(
                tickets.c.status.in_(["received", "dispatched", "in_progress"]),
                tickets.c.paused_at.is_(None),
                tickets.c.deadline < NOW.astimezone(UTC).replace(tzinfo=None),
            )
        ).scalar_one()
        escalated = conn.execute(
            select(func.count()).where(
                tickets.c.escalated_at.is_not(None),
                tickets.c.status.in_(
                    ["received", "dispatched", "in_progress", "replied", "follow_up"]
                ),
            )
        ).scalar_one()
    assert overdue > 0 and escalated > 0
    assert page.locator("#table-overdue tbody tr").count() == overdue
    assert page.locator("#table-escalated tbody tr").count() == escalated
    page.locator("#overdue").screenshot(path=str(SHOTS / "overdue.png"))

    # hot spots and the warning list
    spots = _table(page, "table-hotspots")
    assert spots and all(int(v[1]) >= 2 for v in spots.values())
    assert [h["label"] for h in api["hotspots"]] == list(spots)
    page.locator("#hotspots").screenshot(path=str(SHOTS / "hotspots.png"))
    warning = page.locator("#table-warnings tbody tr.unread")
    assert warning.count() == 1 and "A2区" in warning.inner_text()
    page.locator("#warnings").screenshot(path=str(SHOTS / "warnings.png"))
    page.click("#table-warnings button.ack")
    page.wait_for_selector("#table-warnings tr.unread", state="detached")

    # every CSV download is the table's numbers
    csv_text = page.evaluate(
        f"fetch('/supervision/csv/volume-category.csv?since={SINCE}&until={NOW.date()}')"
        ".then(r => r.text())"
    )
    header = csv_text.lstrip("\ufeff").splitlines()[0].split(",")
    body = [line.split(",") for line in csv_text.lstrip("\ufeff").splitlines()[1:]]
    totals = {name: sum(int(r[i + 1]) for r in body) for i, name in enumerate(header[1:-1])}
    assert totals == _sql_counts(store, tickets.c.category)


def test_public_open_data_page(page: Any, server: str, store: TicketStore, clock: Clock) -> None:
    seed(store, clock, 120, days=14, work=True)
    until = NOW.date() - timedelta(days=2)  # whole days that ended at least a day ago
    page.goto(f"{server}/open-data?since={(NOW - timedelta(days=15)).date()}&until={until}")
    assert "/login" not in page.url
    published = [v for v in store.list() if v.created_at.astimezone(NOW.tzinfo).date() <= until]
    assert int(page.inner_text("#open-data-total")) == len(published) > 60
    page.screenshot(path=str(SHOTS / "open-data.png"), full_page=True)
