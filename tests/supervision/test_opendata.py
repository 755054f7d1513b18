"""Open data: 1,000 tickets full of names, phones and 身份证 numbers; the export has none."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.settings import Settings
from bot.tickets import TicketStore
from bot.tickets.schema import tickets
from tests.supervision.conftest import Clock, Seeded, seed

CLI = Path(sys.executable).with_name("citizenbot")
PHONE = re.compile(r"1[3-9]\d{9}")
ID_NUMBER = re.compile(r"\d{17}[\dXx]")
ID_MASKED = re.compile(r"\d{6}\*+\d{3}[\dXx]")


@pytest.fixture
def seeded(store: TicketStore, clock: Clock) -> Seeded:
    return seed(store, clock, 1000, days=60, work=False, personal_text=True, seed_value=11)


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "VAR_DIR": str(settings.var_dir),
        "PII_KEY": settings.pii_key,
        "DATABASE_URL": settings.database_url,
        "TIMEZONE": "Asia/Shanghai",
    }


def _no_personal_data(text: str, seeded: Seeded, page: bool = False) -> None:
    assert not PHONE.search(text)
    assert not ID_NUMBER.search(text) and not ID_MASKED.search(text)
    for name in set(seeded.names):
        assert name not in text, name
    for phone in seeded.phones[:50]:
        assert phone[-4:] + "，" not in text
    assert "幸福路" not in text and "请尽快处理" not in text  # no free text at all
    if not page:  # (the page's channel labels say 电话)
        assert "电话" not in text


def test_export_has_no_personal_data_and_suppresses_small_cells(
    seeded: Seeded, store: TicketStore, settings: Settings, app: Any
) -> None:
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tickets)).scalar_one() == 1000
        assert conn.execute(select(tickets.c.description)).first()[0].count("身份证") == 1
    outputs = {}
    for fmt in ("csv", "json"):
        done = subprocess.run(
            [
                str(CLI),
                "export",
                "open-data",
                "--since",
                "2026-09-01",
                "--until",
                "2026-11-25",
                "--format",
                fmt,
            ],
            env=_env(settings),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        outputs[fmt] = done.stdout
        _no_personal_data(done.stdout, seeded)

    lines = outputs["csv"].splitlines()
    assert lines[0] == "period,dimension,value,tickets,median_resolution_hours"
    assert not any("<5" in line for line in lines)  # suppressed cells are dropped
    document = json.loads(outputs["json"])
    rows = document["rows"]
    views = [
        v for v in store.list(limit=None)
        if v.created_at.astimezone(store.tz).date().isoformat() <= "2026-11-25"
    ]
    per_day: dict[str, int] = defaultdict(int)
    for v in views:
        per_day[v.created_at.astimezone(store.tz).date().isoformat()] += 1
    totals = {r["period"]: r["tickets"] for r in rows if r["dimension"] == "all"}
    for day, n in per_day.items():  # days under 5 tickets are absent whole
        assert totals.get(day) == (n if n >= 5 else None)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        assert r["tickets"] >= 5 and "suppressed" not in r
        if r["dimension"] != "all":
            groups[(r["period"], r["dimension"])].append(r)
    suppressed_groups = 0
    for (period, _dim), members in groups.items():
        # complementary suppression: what the total leaves unexplained is 0 or >= 5
        hidden = totals[period] - sum(r["tickets"] for r in members)
        assert hidden == 0 or hidden >= 5
        suppressed_groups += hidden > 0
    assert suppressed_groups > 10
    # the published numbers are the database's: one day, one category
    day = next(r for r in rows if r["dimension"] == "category" and r["tickets"])
    count = sum(
        1
        for v in views
        if v.created_at.astimezone(store.tz).date().isoformat() == day["period"]
        and (v.category or "未分类") == day["value"]
    )
    assert count == day["tickets"]

    # the public page: no login, same rules
    from starlette.testclient import TestClient

    public = TestClient(app)
    page = public.get("/open-data?since=2026-09-01&until=2026-11-25")
    assert page.status_code == 200 and "开放数据" in page.text
    _no_personal_data(page.text, seeded, page=True)
    data = public.get("/open-data/data.json?since=2026-09-01&until=2026-11-25&period=all")
    assert data.status_code == 200
    _no_personal_data(data.text, seeded)
    [total] = [r["tickets"] for r in data.json()["rows"] if r["dimension"] == "all"]
    assert total == len(views)
    # a window that is not over yet (today, yesterday) is refused: no differencing snapshots
    for until in ("2026-11-27", "2026-11-26"):
        late = public.get(f"/open-data/data.json?since=2026-11-01&until={until}")
        assert late.status_code == 400
