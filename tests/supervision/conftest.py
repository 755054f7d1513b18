"""Fixtures: a console on a fresh SQLite store with a fixed clock, and seeded tickets.

Tickets are seeded through ``TicketStore`` only (create, start, reply, rate …),
moving the store's clock to each event's time, so every number the dashboard
shows is the product of real ticket lives. The clock then stops at ``NOW``.
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

from bot.console.accounts import Accounts
from bot.console.app import create_app
from bot.settings import Settings, load_settings
from bot.tickets import Actor, NewTicket, TicketStore
from bot.tickets.errors import TicketError

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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "VAR_DIR": str(tmp_path / "var"),
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
            store.rate(view.number, rng.randint(1, 5), True, "", Actor.bot())
        except TicketError:
            pass
    clock.now = NOW
    store.escalate_overdue(NOW)
    return out
