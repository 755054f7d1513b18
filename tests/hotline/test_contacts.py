"""Resolved contacts in the ticket store: recorded once, nothing personal, known keys."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.tickets import InvalidInput, NewTicket
from bot.tickets.store import ResolvedContact, TicketStore

TZ = ZoneInfo("Asia/Shanghai")


def contact(key: str, summary: str = "请问居住证怎么办理？") -> ResolvedContact:
    return ResolvedContact(
        channel="hotline",
        idempotency_key=key,
        summary=summary,
        source=key.split(":")[-1],
        intent="inquire",
        started_at=datetime(2026, 11, 27, 9, tzinfo=TZ),
    )


def test_recorded_once_and_masked(store: TicketStore) -> None:
    recorded = store.record_resolved(
        [
            contact("hotline:A", "我的电话13812345678，问社保"),
            contact("hotline:B"),
            contact("hotline:B"),
        ]
    )
    assert sorted(recorded) == ["hotline:A", "hotline:B"]
    assert store.record_resolved([contact("hotline:A"), contact("hotline:B")]) == []
    rows = store.resolved(channel="hotline")
    assert len(rows) == 2
    assert "13812345678" not in str(rows) and "138****5678" in str(rows)
    assert rows[0]["started_at"] == "2026-11-27T09:00:00+08:00"


def test_seen_keys_covers_tickets_and_contacts(store: TicketStore) -> None:
    store.create(
        NewTicket(channel="hotline", kind="complaint", summary="x", idempotency_key="hotline:T")
    )
    store.record_resolved([contact("hotline:C")])
    assert store.seen_keys(["hotline:T", "hotline:C", "hotline:N"]) == {"hotline:T", "hotline:C"}
    # a ticket's key is never recorded again as a contact
    assert store.record_resolved([contact("hotline:T")]) == []


def test_a_racing_writer_loses_quietly(store: TicketStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.record_resolved([contact("hotline:A")])
    real = store.seen_keys
    calls = iter([set()])  # the first check misses A, as if A was written just after it

    monkeypatch.setattr(store, "seen_keys", lambda keys: next(calls, None) or real(keys))
    assert store.record_resolved([contact("hotline:A"), contact("hotline:B")]) == ["hotline:B"]
    assert len(store.resolved()) == 2


def test_bad_kind_is_refused(store: TicketStore) -> None:
    with pytest.raises(InvalidInput):
        store.record_resolved(
            [ResolvedContact(channel="hotline", idempotency_key="k", summary="s", kind="chat")]
        )
