"""Issue 17, item 2: one masking function that catches what the auditor typed.

Each probe is a way a citizen really writes their numbers (dotted, bracketed,
full-width, spaced, first-generation 身份证, e-mail) or introduces themselves by
name. The masked text must not hold the number or name in any form a reader
could reassemble, and the rest of the text stays as written. Then the same
probes go through the ticket store: its views, and its search, which matches
only what a list entry shows.
"""

from __future__ import annotations

import logging
import re

import pytest

from bot.logging import mask_log_text
from bot.privacy import mask_text
from bot.tickets import Actor, NewTicket, TicketStore
from tests.tickets import conftest as _tickets

# the ticket tests' fixtures: a fresh store on SQLite and on PostgreSQL
clock = _tickets.clock
db_url = _tickets.db_url
env = _tickets.env
pg_url = _tickets.pg_url
pii_keys = _tickets.pii_keys
settings = _tickets.settings
sqlite_template = _tickets.sqlite_template
store = _tickets.store

PROBES = [
    # (text, what must not survive, what the reader still sees)
    ("手机139.1234.5678，请回电", "12345678", "139****5678"),
    ("电话 139 1234 5678", "1234 5678", "139****5678"),
    ("手机１３９１２３４５６７８。", "１２３４５６７８", "139****5678"),
    ("+86-139-1234-5678", "1234-5678", "139****5678"),
    ("座机（０１０）８７６５４３２１", "８７６５", "-****4321"),
    ("座机(0731) 8456-1234", "8456", "-****1234"),
    ("家里电话 8765 4321", "8765", "****4321"),
    ("身份证 430102 1980 0101 1234", "1980 0101", "430102********1234"),
    ("身份证４３０１０２１９８００１０１１２３４", "１９８００１０１", "430102********1234"),
    ("老身份证430102800101123", "800101", "430102******123"),
    ("邮箱 wjg.home@example.com 有照片", "wjg.home", "w***@example.com"),
    ("我叫王建国，住幸福路", "王建国", "我叫王**，住幸福路"),
    ("姓名：欧阳娜娜", "欧阳娜娜", "欧***"),
]


@pytest.mark.parametrize(("text", "secret", "shown"), PROBES)
def test_each_probe_is_masked(text: str, secret: str, shown: str) -> None:
    masked = mask_text(text)
    assert secret not in masked
    assert shown in masked
    # the digits do not survive with the separators taken out either
    digits = re.sub(r"\D", "", secret)
    if len(digits) >= 4:
        assert digits not in re.sub(r"\D", "", masked.replace("4321", "").replace("1234", ""))


def test_what_is_not_personal_stays_as_written() -> None:
    text = "工单GD20261127-0042，我是业主，我是周边居民，2026年11月27日13:45，３栋２单元。"
    assert mask_text(text) == text


def test_log_lines_use_the_same_masking(caplog: pytest.LogCaptureFixture) -> None:
    line = "收到：我叫王建国，手机139.1234.5678，邮箱wjg@example.com"
    masked = mask_log_text(line)
    assert "王建国" not in masked and "1234.5678" not in masked and "wjg@" not in masked
    with caplog.at_level(logging.INFO):
        logging.getLogger("citizenbot.test").info(line)


def test_the_store_masks_the_name_it_knows_and_searches_masked_text(
    store: TicketStore,
) -> None:
    text = "李秀英反映：楼下烧烤油烟大，联系我１３９.１２３４.５６７８或 lxy@example.com"
    view = store.create(
        NewTicket(
            channel="wechat",
            kind="complaint",
            summary=text[:40],
            description=text,
            sender_id="wechat:o-lxy",
            name="李秀英",
            phone="13912345678",
            category="环境保护",
            category_confidence=0.9,
        )
    )
    shown = view.public_dict()
    for secret in ("李秀英", "1234.5678", "１２３４", "lxy@"):
        assert secret not in str(shown)
    assert view.masked_name == "李**" and "李**反映" in view.description
    # search: what the list shows finds the ticket, the full name or number does not
    assert [t.number for t in store.list(query="烧烤")] == [view.number]
    assert [t.number for t in store.list(query="李**")] == [view.number]
    assert store.list(query="李秀英") == []
    assert store.list(query="13912345678") == []
    assert store.list(query="５６７８")[0].number == view.number  # full-width query, masked tail
    owner = Actor.citizen("wechat:o-lxy")
    store.add_info(view.number, "补充：我叫李秀英，电话139 1234 5678", owner)
    assert store.list(query="李秀英") == []
    assert "李秀英" not in str(store.get(view.number).transcript)


def test_staff_find_a_callers_tickets_by_full_number_and_it_is_audited(
    store: TicketStore,
) -> None:
    mine = store.create(NewTicket(channel="hotline", kind="complaint", summary="噪音扰民",
                                  phone="13912345678", category="环境保护",
                                  category_confidence=0.9))
    store.create(NewTicket(channel="hotline", kind="complaint", summary="噪音扰民",
                           phone="13800000000"))
    dispatcher = Actor("dispatcher", "wang")
    found = store.list(query="139 1234 5678", actor=dispatcher)
    assert [t.number for t in found] == [mine.number]
    assert found[0].masked_phone == "139****5678"  # the list still shows it masked
    [event] = [e for e in store.history(mine.number) if e["action"] == "contact_searched"]
    assert event["actor_name"] == "wang" and "1234" not in str(event)
    # no actor (a script), a citizen, or a part of the number: nothing through the index
    assert store.list(query="13912345678") == []
    assert store.list(query="1234 5678", actor=dispatcher) == []
    other_department = Actor("department", "li", "市住房和城乡建设局")
    assert store.list(query="13912345678", actor=other_department) == []
    assert store.verify_audit() == []
