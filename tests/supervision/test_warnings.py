"""Early warning: a seeded surge in one district and category gives exactly one warning."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.settings import Settings
from bot.supervision import surge
from bot.tickets import NewTicket, TicketStore
from bot.tickets.schema import warnings as warnings_table
from tests.supervision.conftest import NOW, Clock
from tests.supervision.helpers import login

CLI = Path(sys.executable).with_name("citizenbot")


def _file(store: TicketStore, clock: Clock, when: Any, category: str, district: str) -> None:
    clock.now = when
    store.create(
        NewTicket(
            channel="wechat",
            kind="complaint",
            summary=f"A市{district}夜间施工噪音扰民",
            place=f"{district}幸福路",
            category=category,
            category_confidence=0.9,
        )
    )


def _seed_surge(store: TicketStore, clock: Clock) -> None:
    # baseline: one ticket every other day in each of three cells for 28 days
    for k in range(1, 29, 2):
        for category, district in (
            ("环境保护", "A2区"),
            ("环境保护", "A3区"),
            ("交通运输", "A2区"),
        ):
            _file(store, clock, NOW - timedelta(days=k), category, district)
    # today: 9 noise complaints in A2区 (the surge), 2 in A3区 (ordinary)
    for minute in range(9):
        _file(store, clock, NOW - timedelta(hours=2, minutes=minute), "环境保护", "A2区")
    for minute in range(2):
        _file(store, clock, NOW - timedelta(hours=1, minutes=minute), "环境保护", "A3区")
    clock.now = NOW


def _count(store: TicketStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(warnings_table)).scalar_one())


def test_one_warning_per_surge(store: TicketStore, clock: Clock, app: Any) -> None:
    _seed_surge(store, clock)
    first = surge.check(store.engine, store.tz, NOW)
    assert [(s["category"], s["district"], s["count"]) for s in first["surges"]] == [
        ("环境保护", "A2区", 9)
    ]
    assert len(first["sent"]) == 1
    second = surge.check(store.engine, store.tz, NOW + timedelta(minutes=30))
    assert len(second["surges"]) == 1 and second["sent"] == []
    assert _count(store) == 1
    # the surge goes on the next day: same episode, still one warning
    for minute in range(10):
        _file(store, clock, NOW + timedelta(days=1, minutes=minute), "环境保护", "A2区")
    clock.now = NOW + timedelta(days=1, hours=1)
    third = surge.check(store.engine, store.tz, clock.now)
    assert len(third["surges"]) == 1 and third["sent"] == [] and _count(store) == 1
    [row] = surge.recorded(store.engine)
    assert row["first_day"] == "2026-11-27" and row["last_day"] == "2026-11-28"
    assert row["count"] == 10

    # shown to supervisors, who mark it read; other roles cannot see it
    boss, csrf = login(app, "boss")
    listed = boss.get("/api/supervision/warnings?unread=1").json()
    assert listed["unread"] == 1 and listed["warnings"][0]["district"] == "A2区"
    assert "A2区" in boss.get("/supervision").text
    done = boss.post(f"/api/supervision/warnings/{row['id']}/ack", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200
    assert boss.get("/api/supervision/warnings?unread=1").json()["unread"] == 0
    dept, _ = login(app, "env1")
    assert dept.get("/api/supervision/warnings").status_code == 403


def test_cli_warnings_check(store: TicketStore, clock: Clock, settings: Settings) -> None:
    _seed_surge(store, clock)
    env = {
        **os.environ,
        "VAR_DIR": str(settings.var_dir),
        "PII_KEY": settings.pii_key,
        "DATABASE_URL": settings.database_url,
        "TIMEZONE": "Asia/Shanghai",
    }
    for _ in range(2):
        done = subprocess.run(
            [str(CLI), "warnings", "check", "--now", NOW.isoformat()],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "环境保护 × A2区: 9 today" in done.stdout
    assert _count(store) == 1
