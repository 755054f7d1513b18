"""The live-session store: one open session a citizen, first to take it has it, texts
encrypted at rest, and a wait that expires exactly when the setting says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bot.tickets import TicketStore
from bot.tickets.errors import ConflictError, IllegalTransition, InvalidInput
from bot.tickets.live import LiveStore
from bot.tickets.schema import live_messages, live_sessions

HISTORY = [
    {"speaker": "citizen", "text": "你好"},
    {"speaker": "bot", "text": "您好，请问有什么可以帮您？"},
    {"speaker": "citizen", "text": "办身份证要带什么，我电话13812345678"},
]


def test_open_keeps_the_conversation_and_the_request(live: LiveStore) -> None:
    session = live.open("webchat:abc", "webchat", "办身份证要带什么", wait_minutes=5,
                        history=HISTORY)
    assert session.status == "waiting" and session.request == "办身份证要带什么"
    assert timedelta(minutes=4, seconds=59) < session.expires_at - session.created_at \
        <= timedelta(minutes=5)
    full = live.get(session.id)
    assert [(m.speaker, m.text, m.flag) for m in full.messages] == [
        (line["speaker"], line["text"], "before") for line in HISTORY
    ]
    # asking again (a retried message, a second 转人工) finds the same session
    again = live.open("webchat:abc", "webchat", "别的", wait_minutes=5)
    assert again.id == session.id and live.current("webchat:abc").id == session.id  # type: ignore[union-attr]


def test_texts_are_encrypted_at_rest(live: LiveStore, store: TicketStore) -> None:
    session = live.open("wechat:o1", "wechat", "公积金提取", wait_minutes=5, history=HISTORY)
    live.record(session.id, "citizen", "我的身份证号是110101199003077777")
    with store.engine.connect() as conn:
        stored = " ".join(conn.execute(select(live_messages.c.text_enc)).scalars())
        requests = conn.execute(select(live_sessions.c.request_enc)).scalars()
        stored += " ".join(str(v) for v in requests)
    assert "13812345678" not in stored and "110101199003077777" not in stored
    assert "公积金" not in stored
    assert live.get(session.id).messages[-1].text.endswith("110101199003077777")


def test_first_to_take_has_it(live: LiveStore) -> None:
    session = live.open("telegram:42", "telegram", "社保卡", wait_minutes=5)
    taken = live.take(session.id, "disp")
    assert taken.status == "taken" and taken.taken_by == "disp"
    assert live.take(session.id, "disp").taken_by == "disp"  # a double click
    with pytest.raises(ConflictError):
        live.take(session.id, "env1")
    with pytest.raises(ConflictError):
        live.end(session.id, "closed", "env1", staff_only="env1")
    ended = live.end(session.id, "handed_back", "disp", staff_only="disp")
    assert ended.status == "ended" and ended.end_reason == "handed_back"
    assert live.current("telegram:42") is None
    with pytest.raises(IllegalTransition):
        live.take(session.id, "env1")
    with pytest.raises(IllegalTransition):
        live.end(session.id, "closed", "disp")
    # a new 转人工 after the end opens a new session
    assert live.open("telegram:42", "telegram", "", wait_minutes=5).id != session.id


def test_staff_write_only_in_a_taken_session(live: LiveStore) -> None:
    session = live.open("rest:x", "rest", "", wait_minutes=5)
    with pytest.raises(IllegalTransition):
        live.record(session.id, "staff", "您好", author="disp")
    with pytest.raises(InvalidInput):
        live.record(session.id, "citizen", "   ")
    live.take(session.id, "disp")
    message = live.record(session.id, "staff", "您好", author="disp", delivery="pending")
    live.set_delivery(message.id, "failed", "45015 window closed")
    found = live.message(session.id, message.id)
    assert (found.delivery, found.error, found.author) == ("failed", "45015 window closed", "disp")


def test_expiry_follows_the_wait(store: TicketStore) -> None:
    now = [datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)]
    live = LiveStore(store.with_clock(lambda: now[0]))
    session = live.open("rest:late", "rest", "低保怎么申请", wait_minutes=5)
    live.open("rest:other", "rest", "", wait_minutes=10)
    now[0] += timedelta(minutes=4, seconds=59)
    assert live.overdue() == []
    with pytest.raises(IllegalTransition):
        live.end(session.id, "expired", "system")
    now[0] += timedelta(seconds=1)
    assert [s.id for s in live.overdue()] == [session.id]
    live.end(session.id, "expired", "system")
    live.end_callback(session.id, "GD20261203-0001")
    assert live.get(session.id).callback_number == "GD20261203-0001"
    assert live.overdue() == []


def test_listing_by_department(live: LiveStore) -> None:
    centre = live.open("rest:a", "rest", "a", wait_minutes=5)
    routed = live.open("rest:b", "rest", "b", wait_minutes=5, department="市生态环境局",
                       ticket_number="GD20261203-0009")
    assert [s.id for s in live.listing()] == [centre.id, routed.id]
    assert [s.id for s in live.listing(department="市生态环境局")] == [routed.id]
    live.end(centre.id, "closed", "disp")
    assert [s.id for s in live.listing()] == [routed.id]
    recent = datetime.now(timezone.utc) - timedelta(hours=1)
    assert [s.id for s in live.listing(ended_since=recent)] == [routed.id, centre.id]


def test_purge_removes_what_people_wrote_in_ended_sessions(store: TicketStore) -> None:
    now = [datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)]
    live = LiveStore(store.with_clock(lambda: now[0]))
    old = live.open("rest:old", "rest", "低保", wait_minutes=5, history=HISTORY)
    live.end(old.id, "closed", "disp")
    still_open = live.open("rest:open", "rest", "公积金", wait_minutes=5, history=HISTORY)
    now[0] += timedelta(days=400)
    # the retention run (citizenbot tickets purge) empties them with the tickets
    live.store.purge(days=365)
    assert live.get(old.id).messages == [] and live.get(old.id).request == ""
    assert live.get(old.id).end_reason == "closed"
    assert len(live.get(still_open.id).messages) == 3
