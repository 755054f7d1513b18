"""SLA clocks in the store: deadlines, the due list, pauses, 督办 exactly once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from bot.tickets import InvalidInput, TicketStore
from tests.tickets.conftest import SHANGHAI, Clock, run_cli
from tests.tickets.helpers import CITIZEN, ENV_STAFF, SUPERVISOR, complaint


def test_deadline_by_kind_in_working_days(store: TicketStore, clock: Clock) -> None:
    clock.now = datetime(2026, 9, 30, 15, 0, tzinfo=SHANGHAI)
    inquiry = store.create(complaint(kind="inquiry", summary="社保卡怎么办理"))
    assert inquiry.sla_class == "inquiry"
    assert inquiry.deadline == datetime(2026, 10, 10, 17, 30, tzinfo=SHANGHAI)
    urgent = store.create(complaint(kind="emergency", summary="路面塌陷有危险"))
    assert urgent.deadline == clock.now + timedelta(hours=24)
    assert inquiry.created_at == clock.now


def test_due_lists_near_and_past_deadlines_and_breach_escalates_once(
    store: TicketStore, clock: Clock
) -> None:
    urgent = store.create(complaint(kind="emergency", summary="井盖丢失"))
    calm = store.create(complaint(summary="建议增加公交线路", kind="suggestion", place="光明路"))
    assert store.due(within_hours=1) == []
    assert [t.number for t in store.due(within_hours=25)] == [urgent.number]
    clock.advance(hours=25)
    escalated = store.escalate_overdue()
    assert [t.number for t in escalated] == [urgent.number]
    assert escalated[0].escalated_at is not None
    assert store.escalate_overdue() == []
    clock.advance(days=3)
    assert store.escalate_overdue() == []
    actions = [e["action"] for e in store.history(urgent.number)]
    assert actions.count("escalate") == 1
    assert urgent.number in [t.number for t in store.due(within_hours=0)]
    assert calm.number not in [t.number for t in store.due(within_hours=0)]


def test_replied_tickets_stop_their_clock(store: TicketStore, clock: Clock) -> None:
    urgent = store.create(complaint(kind="emergency", summary="井盖丢失"))
    store.reply(urgent.number, "已补装井盖", ENV_STAFF)
    clock.advance(days=2)
    assert store.due() == [] and store.escalate_overdue() == []


def test_pause_while_waiting_on_the_citizen(store: TicketStore, clock: Clock) -> None:
    ticket = store.create(complaint())  # Friday 27 Nov 2026
    deadline = ticket.deadline
    with pytest.raises(InvalidInput):
        store.resume(ticket.number, ENV_STAFF)
    paused = store.pause(ticket.number, "请市民补充照片", ENV_STAFF)
    assert paused.paused
    with pytest.raises(InvalidInput):
        store.pause(ticket.number, "again", ENV_STAFF)
    clock.advance(days=30)
    assert store.due() == [] and store.escalate_overdue() == []
    clock.now = datetime(2026, 12, 1, 11, 0, tzinfo=SHANGHAI)  # Tuesday: Mon+Tue lost
    resumed = store.add_info(ticket.number, "照片已上传", CITIZEN)  # resumes the clock
    assert not resumed.paused
    assert resumed.deadline.date() == (deadline + timedelta(days=4)).date()


def test_reopen_restarts_the_clock_and_may_escalate_again(store: TicketStore, clock: Clock) -> None:
    ticket = store.create(complaint(kind="emergency", summary="井盖丢失"))
    clock.advance(hours=30)
    assert len(store.escalate_overdue()) == 1
    store.reply(ticket.number, "已处理", ENV_STAFF)
    reopened = store.rate(ticket.number, 1, False, "没修好", CITIZEN)
    assert reopened.escalated_at is None and reopened.deadline > clock.now
    clock.advance(hours=30)
    assert len(store.escalate_overdue()) == 1
    assert [e["action"] for e in store.history(ticket.number)].count("escalate") == 2
    manual = store.escalate(ticket.number, "领导督办", SUPERVISOR)
    assert manual.escalated_at is not None


def test_cli_sla_check_escalates_overdue_tickets(
    store: TicketStore, clock: Clock, env: dict[str, str]
) -> None:
    clock.now = clock.now - timedelta(days=2)  # created two days ago: now overdue
    overdue = store.create(complaint(kind="emergency", summary="井盖丢失"))
    code, out, err = run_cli(env, "sla", "check", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [t["number"] for t in report["escalated"]] == [overdue.number]
    assert overdue.number in [t["number"] for t in report["due"]]
    code, out, _ = run_cli(env, "sla", "check")
    assert code == 0 and "escalated 0" in out
