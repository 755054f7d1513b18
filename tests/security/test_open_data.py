"""Issue 17, item 5: open data that cannot be differenced down to a person.

The auditor's three findings, replayed: a suppressed cell still listed (its
presence says someone of that district filed that day), a window ending today
(two downloads an hour apart differ by the tickets filed in between), and a
group whose two hidden cells sum to 2 (total minus published = two single
tickets). Each runs against the real export (CLI and the public page).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from starlette.testclient import TestClient

from bot.settings import Settings
from bot.supervision import opendata
from bot.tickets import NewTicket, TicketStore
from tests.supervision import conftest as _supervision
from tests.supervision.conftest import NOW, Clock
from tests.supervision.test_rules import _fact
from tests.tickets.conftest import run_cli

app = _supervision.app
clock = _supervision.clock
database_url = _supervision.database_url
db_url = _supervision.db_url
pg_url = _supervision.pg_url
settings = _supervision.settings
sqlite_template = _supervision.sqlite_template
store = _supervision.store

CATEGORIES = frozenset(["环境保护", "城乡建设", "交通运输", "教育文体"])


def test_two_small_cells_never_sum_below_k() -> None:
    day = date(2026, 11, 20)
    facts = [_fact(day, "环境保护", "A1区", i) for i in range(20)]
    facts += [_fact(day, "城乡建设", "A1区", 100), _fact(day, "交通运输", "A1区", 101)]
    facts += [_fact(day, "教育文体", "A1区", 200 + i) for i in range(6)]
    cells = opendata.aggregate(facts, since=day, until=day, categories=CATEGORIES)
    rows = opendata.rows(cells)
    total = next(r["tickets"] for r in rows if r["dimension"] == "all")
    shown = [r for r in rows if r["dimension"] == "category"]
    assert total == 28 and [r["value"] for r in shown] == ["环境保护"]
    assert total - sum(r["tickets"] for r in shown) >= opendata.K  # 8, not 2
    assert all(r["tickets"] >= opendata.K for r in rows)


def _tickets(store: TicketStore, clock: Clock, day: date, district: str, n: int) -> None:
    for i in range(n):
        clock.now = NOW.replace(year=day.year, month=day.month, day=day.day, hour=9, minute=i)
        store.create(NewTicket(channel="wechat", kind="complaint",
                               summary=f"A市{district}工地噪音扰民", place=f"{district}幸福路",
                               category="环境保护", category_confidence=0.9,
                               sender_id=f"wechat:o-{district}-{i}"))
    clock.now = NOW


def test_a_single_ticket_leaves_no_trace(
    app: Any, store: TicketStore, clock: Clock, settings: Settings
) -> None:
    day = NOW.date() - timedelta(days=3)
    _tickets(store, clock, day, "A1区", 12)
    _tickets(store, clock, day, "A2区", 14)
    _tickets(store, clock, day, "A7县", 1)  # the one person in that county that day
    public = TestClient(app)
    for query in (f"since={day}&until={day}&period=day", f"since={day}&until={day}&period=all"):
        for fmt in ("csv", "json"):
            answer = public.get(f"/open-data/data.{fmt}?{query}")
            assert answer.status_code == 200, answer.text
            assert "A7县" not in answer.text and "<5" not in answer.text
    page = public.get(f"/open-data?since={day}&until={day}")
    assert page.status_code == 200 and "A7县" not in page.text
    env = {"VAR_DIR": str(settings.var_dir), "DATABASE_URL": settings.database_url,
           "PII_KEY": ",".join(settings.effective_pii_keys), "TIMEZONE": "Asia/Shanghai"}
    code, out, err = run_cli(env, "export", "open-data", "--since", str(day), "--until", str(day))
    assert code == 0, err
    # A7县's single ticket is hidden, and with it A1区 (complementary): A2区 alone is listed
    assert ",district,A2区,14," in out and "A7县" not in out and "A1区" not in out


def test_windows_end_at_least_a_day_ago(app: Any, settings: Settings) -> None:
    public = TestClient(app)
    latest = opendata.latest_until(NOW, NOW.tzinfo)
    assert latest == NOW.date() - timedelta(days=2)
    for until in (NOW.date(), NOW.date() - timedelta(days=1)):
        answer = public.get(f"/open-data/data.csv?since=2026-11-01&until={until}")
        assert answer.status_code == 400
    assert public.get(f"/open-data/data.csv?since=2026-11-01&until={latest}").status_code == 200
    default = public.get("/open-data/data.json").json()
    assert default["until"] == latest.isoformat()
