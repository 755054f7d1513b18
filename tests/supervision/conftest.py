"""Fixtures: a console on a fresh store with a fixed clock, and seeded tickets.

Tickets are seeded through ``TicketStore`` only (create, start, reply, rate …),
moving the store's clock to each event's time, so every number the dashboard
shows is the product of real ticket lives. The clock then stops at ``NOW``.

The store runs on both backends through the ticket tests' own ``db_url``
fixture (``tests/tickets/conftest.py``: a migrated SQLite copy, or the real
PostgreSQL in a per-session schema that is dropped at the end), because the
dashboard, the open-data export, the warnings and Open311 all read it with SQL
that production runs on PostgreSQL. Tests that must stay on SQLite (the
browser ones) pin it with :data:`SQLITE_ONLY`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.console.accounts import Accounts
from bot.console.app import create_app
from bot.settings import Settings, load_settings
from bot.tickets import Actor, NewTicket, TicketStore
from bot.tickets.errors import TicketError
from tests.tickets.conftest import db_url, pg_url, sqlite_template  # noqa: F401 (fixtures)

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: a Friday morning, outside any holiday
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)
PASSWORD = "correct-horse-battery"
CATEGORIES = [
    "城乡建设",
    "劳动和社会保障",
    "教育文体",
    "商贸旅游",
    "环境保护",
    "卫生计生",
    "交通运输",
]
DISTRICTS = ["A1区", "A2区", "A3区", "A4区", "A5区", "A6区", "A7县", "A8县", "A9市"]
CHANNELS = ["wechat", "webchat", "telegram", "hotline", "rest"]
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = ["建国", "秀英", "伟", "芳", "娜", "敏", "静", "丽", "强", "磊"]
TOPICS = {
    "城乡建设": "小区电梯长期故障无人维修",
    "劳动和社会保障": "公司拖欠工资三个月未发",
    "教育文体": "学校周边培训机构违规收费",
    "商贸旅游": "超市出售过期食品",
    "环境保护": "工地夜间施工噪音扰民",
    "卫生计生": "社区医院排队时间过长",
    "交通运输": "公交站台损坏影响乘车",
}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


def id_number(rng: random.Random) -> str:
    """A 身份证 number with a valid check digit."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    body = f"430102{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body += f"{rng.randint(0, 999):03d}"
    total = sum(int(d) * w for d, w in zip(body, weights, strict=True))
    return body + "10X98765432"[total % 11]


#: ``pytestmark`` of a module whose tests run on SQLite only (overrides the backends)
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def database_url(db_url: str) -> str:  # noqa: F811 (the imported fixture)
    """``db_url``, with the tables it does not empty emptied too, and a Shanghai session.

    The PostgreSQL schema lives for the session and ``db_url`` truncates only
    the ticket tables; warnings, Open311 keys and the console's accounts (made
    by ``create_all`` in the same schema) must not leak from one test to the next.

    Sessions run with ``TimeZone=Asia/Shanghai``, as a server initialised on a
    host in China does: times are naive-UTC ``timestamp`` columns, and an aware
    datetime bound as a parameter (or ``now()`` in SQL) would be converted with
    the session's zone — eight hours off, which a UTC test server never shows.
    """
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        return db_url
    engine = create_engine(db_url, future=True)
    with engine.begin() as conn:
        names = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename <> 'alembic_version'"
            )
        ).scalars()
        joined = ", ".join(f'"{n}"' for n in names)
        conn.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))
    engine.dispose()
    options = f"{url.query.get('options', '')} -cTimeZone=Asia/Shanghai".strip()
    return url.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(
        {
            "VAR_DIR": str(tmp_path / "var"),
            "DATABASE_URL": database_url,
            "PII_KEY": Fernet.generate_key().decode(),
            "RASA_TOKEN": "test-token",
            "RASA_URL": "http://127.0.0.1:9",
            "CONSOLE_NOTIFY_TIMEOUT": "2",
            "TIMEZONE": "Asia/Shanghai",
            "ROUTING_THRESHOLD": "0.6",
            # seeded texts repeat on purpose; no duplicate links needed here
            "DUPLICATE_THRESHOLD": "1.01",
        }
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def store(settings: Settings, clock: Clock) -> Iterator[TicketStore]:
    s = TicketStore(settings.database_url, settings=settings, clock=clock)
    yield s
    s.dispose()


@pytest.fixture
def app(settings: Settings, store: TicketStore) -> Any:
    application = create_app(settings, store)
    accounts: Accounts = application.state.console.accounts
    for name, role, department in (
        ("boss", "supervisor", None),
        ("disp", "dispatcher", None),
        ("env1", "department", "市生态环境局"),
    ):
        accounts.add(name, role, department, PASSWORD, must_change=False)
    return application


@dataclass
class Seeded:
    numbers: list[str]
    names: list[str]
    phones: list[str]
    id_numbers: list[str]


def seed(
    store: TicketStore,
    clock: Clock,
    n: int,
    *,
    days: int = 30,
    seed_value: int = 7,
    work: bool = True,
    personal_text: bool = False,
) -> Seeded:
    """``n`` tickets over the ``days`` before ``NOW``; most worked through their life."""
    rng = random.Random(seed_value)
    out = Seeded([], [], [], [])
    plans = []
    for i in range(n):
        created = NOW - timedelta(
            days=rng.randint(0, days - 1), hours=rng.randint(0, 10), minutes=rng.randint(0, 59)
        )
        if created > NOW:
            created = NOW - timedelta(minutes=5)
        plans.append((created, i))
    plans.sort()
    staff = Actor("supervisor", "seed")
    for created, i in plans:
        clock.now = created
        category = rng.choice(CATEGORIES) if rng.random() > 0.08 else None
        district = rng.choice(DISTRICTS)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        phone = f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}"
        ident = id_number(rng)
        topic = TOPICS.get(category or "", "其他问题需要协调")
        summary = f"A市{district}{topic}"
        description = f"{topic}，已经持续一周，请尽快处理。"
        if personal_text:
            description += f"我是{name}，电话{phone}，身份证{ident}。"
        view = store.create(
            NewTicket(
                channel=rng.choice(CHANNELS),
                kind="complaint",
                summary=summary,
                description=description,
                place=f"{district}幸福路{rng.randint(1, 99)}号",
                phone=phone,
                name=name,
                id_number=ident,
                category=category,
                category_confidence=0.9 if category else None,
                sender_id=f"citizen-{i}",
            )
        )
        out.numbers.append(view.number)
        out.names.append(name)
        out.phones.append(phone)
        out.id_numbers.append(ident)
        if not work or view.department is None:
            continue
        fate = rng.random()
        try:
            if fate < 0.15:
                continue  # untouched
            clock.now = min(created + timedelta(hours=rng.randint(1, 30)), NOW)
            store.start(view.number, staff)
            if fate < 0.3:
                continue
            clock.now = min(clock.now + timedelta(hours=rng.randint(1, 200)), NOW)
            store.reply(view.number, "已处理完毕", staff)
            if fate < 0.45:
                continue
            clock.now = min(clock.now + timedelta(hours=rng.randint(1, 48)), NOW)
            store.rate(view.number, rng.randint(1, 5), True, "", Actor.citizen(view.sender_id))
        except TicketError:
            pass
    clock.now = NOW
    store.escalate_overdue(NOW)
    return out
