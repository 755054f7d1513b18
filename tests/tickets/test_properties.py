"""Random operation sequences keep the store's invariants.

Whatever staff, citizens and the clock do, in any order: only legal states
are reached, refused operations change nothing, every audit chain verifies,
deadlines are never in the past at creation, and nothing personal leaves the
store unmasked.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bot.tickets import Status, TicketError, TicketStore
from bot.tickets.lifecycle import ACTIVE
from tests.tickets.conftest import Clock
from tests.tickets.helpers import (
    CITIZEN,
    DISPATCHER,
    ENV_STAFF,
    HOUSING_STAFF,
    ID_NUMBER,
    NAME,
    PHONE,
    SUPERVISOR,
    complaint,
)

#: the issue's diagram, written out independently of lifecycle.RULES
EDGES = {
    (None, "received"),
    ("received", "dispatched"),
    ("dispatched", "in_progress"),
    ("received", "replied"),  # 直接答复: the centre answers without dispatching
    ("dispatched", "replied"),
    ("in_progress", "replied"),
    ("replied", "follow_up"),
    ("follow_up", "closed"),
    ("follow_up", "in_progress"),  # reopened: citizen not satisfied
    ("dispatched", "dispatched"),  # 转派
    ("in_progress", "dispatched"),  # 转派
    ("dispatched", "received"),  # 退回
    ("in_progress", "received"),  # 退回
    ("received", "merged"),
    ("dispatched", "merged"),
    ("in_progress", "merged"),
}
# Repeated entries weight the draw towards the closed loop, so that sequences
# reach reply, follow-up, reopen and closure instead of stalling at receipt.
ACTORS = [
    ENV_STAFF,
    ENV_STAFF,
    ENV_STAFF,
    DISPATCHER,
    DISPATCHER,
    CITIZEN,
    HOUSING_STAFF,
    SUPERVISOR,
]
DEPARTMENTS = ["市生态环境局", "市生态环境局", "市住房和城乡建设局", None]
STEPS = [
    *["dispatch", "start", "reply", "follow_up", "rate_ok", "rate_bad"] * 3,
    "transfer",
    "return",
    "merge",
    "add_info",
    "note",
    "pause",
    "resume",
    "escalate",
    "tick",
    "tick",
    "close",
]
OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(STEPS),
        st.sampled_from(range(len(ACTORS))),
        st.sampled_from(range(len(DEPARTMENTS))),
    ),
    min_size=1,
    max_size=20,
)


def _apply(
    store: TicketStore, clock: Clock, number: str, other: str, op: tuple[str, int, int]
) -> Any:
    name, actor_index, dept_index = op
    actor = ACTORS[actor_index]
    department = DEPARTMENTS[dept_index]
    match name:
        case "dispatch":
            return store.dispatch(number, department or "市教育局", actor)
        case "start":
            return store.start(number, actor)
        case "reply":
            return store.reply(number, f"已处理，联系电话{PHONE}", actor)
        case "follow_up":
            return store.request_follow_up(number, actor)
        case "rate_ok":
            return store.rate(number, 5, True, "好", actor)
        case "rate_bad":
            return store.rate(number, 1, False, f"我是{NAME}，没解决", actor)
        case "transfer":
            return store.transfer(number, department, "职责调整", actor)
        case "return":
            return store.return_to_dispatch(number, "非本部门职责", actor)
        case "merge":
            return store.merge(number, other, actor)
        case "add_info":
            return store.add_info(number, f"补充身份证{ID_NUMBER}", actor)
        case "note":
            return store.add_note(number, "跟进中", actor)
        case "pause":
            return store.pause(number, "等待市民补充材料", actor)
        case "resume":
            return store.resume(number, actor)
        case "escalate":
            return store.escalate_overdue()
        case "tick":
            clock.advance(hours=7 * (dept_index + 1))
            return None
        case "close":
            return store.close(number, "回访未接通", actor)
    raise AssertionError(name)


def _assert_masked(payload: str) -> None:
    for secret in (PHONE, ID_NUMBER, NAME, "19491231"):
        assert secret not in payload


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operations=OPERATIONS,
    kind=st.sampled_from(["complaint", "inquiry", "emergency"]),
    confidence=st.sampled_from([0.3, 0.9, 0.9]),
)
@example(  # the whole loop with a reopen, so every run covers the deep states
    operations=[
        ("start", 0, 0),
        ("reply", 0, 0),
        ("rate_bad", 5, 0),
        ("reply", 0, 0),
        ("follow_up", 3, 0),
        ("rate_ok", 5, 0),
        ("note", 3, 0),
    ],
    kind="complaint",
    confidence=0.9,
)
@example(  # clocks: pause, time passing, escalation, resume, 退回 and merge
    operations=[
        ("pause", 0, 0),
        ("tick", 0, 3),
        ("escalate", 0, 0),
        ("resume", 0, 0),
        ("tick", 0, 3),
        ("escalate", 0, 0),
        ("return", 0, 0),
        ("merge", 3, 0),
    ],
    kind="emergency",
    confidence=0.9,
)
def test_random_operations_keep_invariants(
    store: TicketStore,
    clock: Clock,
    operations: list[tuple[str, int, int]],
    kind: str,
    confidence: float,
) -> None:
    ticket = store.create(complaint(kind=kind, category_confidence=confidence))
    assert ticket.deadline > ticket.created_at
    other = store.create(complaint(summary="另一件：路灯不亮", place="光明路", kind=kind))
    for op in operations:
        before = store.get(ticket.number)
        events_before = len(store.history(ticket.number))
        try:
            _apply(store, clock, ticket.number, other.number, op)
        except TicketError:
            assert store.get(ticket.number) == before
            assert len(store.history(ticket.number)) == events_before
        after = store.get(ticket.number)
        event(f"reached {after.status.value}")
        assert after.status in set(Status)
        if after.status is Status.MERGED:
            assert after.duplicate_of == other.number
        if after.status is Status.CLOSED:
            assert after.closed_at is not None
        if after.escalated_at is not None:
            escalations = [e for e in store.history(ticket.number) if e["action"] == "escalate"]
            assert (
                1
                <= len(escalations)
                <= after.reopen_count
                + 1
                + sum(1 for e in escalations if e["actor_role"] != "system")
            )
        if after.status in ACTIVE and after.paused:
            assert after.number not in {t.number for t in store.due(within_hours=10_000)}
    assert store.verify_audit() == []
    for step in store.history(ticket.number):
        if step["from_status"] != step["to_status"] or step["action"] == "transfer":
            assert (step["from_status"], step["to_status"]) in EDGES, step
    for view in store.list():
        _assert_masked(json.dumps(view.public_dict(), ensure_ascii=False))
        _assert_masked(repr(view))
    _assert_masked(json.dumps(store.history(ticket.number), ensure_ascii=False))
