"""A ticket's life through the store: transitions, rights, routing, idempotency."""

from __future__ import annotations

import pytest

from bot.tickets import (
    Actor,
    ConflictError,
    IllegalTransition,
    InvalidInput,
    PermissionDenied,
    Role,
    Status,
    TicketNotFound,
    TicketStore,
)
from tests.tickets.conftest import Clock
from tests.tickets.helpers import (
    CITIZEN,
    DISPATCHER,
    ENV_STAFF,
    HOUSING_STAFF,
    SUPERVISOR,
    complaint,
)


def test_closed_loop_from_receipt_to_closure(store: TicketStore) -> None:
    ticket = store.create(complaint())
    assert ticket.status is Status.DISPATCHED  # confident category: auto-dispatched
    assert ticket.department == "市生态环境局"
    assert ticket.number.startswith("GD20261127-")
    store.start(ticket.number, ENV_STAFF)
    replied = store.reply(ticket.number, "已责令商户安装油烟净化器", ENV_STAFF)
    assert replied.status is Status.REPLIED and replied.reply
    assert store.request_follow_up(ticket.number, DISPATCHER).status is Status.FOLLOW_UP
    closed = store.rate(ticket.number, 5, True, "满意", CITIZEN)
    assert closed.status is Status.CLOSED and closed.rating == 5 and closed.closed_at
    actions = [e["action"] for e in store.history(ticket.number)]
    assert actions == ["create", "dispatch", "start", "reply", "follow_up", "rate_close"]
    assert store.history(ticket.number)[1]["actor_role"] == "system"
    assert store.verify_audit() == []


def test_low_confidence_waits_for_manual_dispatch_and_corrections_are_kept(
    store: TicketStore,
) -> None:
    ticket = store.create(complaint(category="环境保护", category_confidence=0.3))
    assert ticket.status is Status.RECEIVED and ticket.department is None
    assert ticket in store.list(status="received")
    dispatched = store.dispatch(
        ticket.number, "市住房和城乡建设局", DISPATCHER, category="城乡建设"
    )
    assert dispatched.department == "市住房和城乡建设局"
    assert dispatched.category == "城乡建设" and dispatched.predicted_category == "环境保护"
    [correction] = store.routing_corrections()
    assert correction["predicted"] == "环境保护" and correction["corrected"] == "城乡建设"
    assert correction["actor"] == "dispatcher:wang"
    assert "13812345678" not in correction["text"]


def test_unknown_category_and_keyword_override(store: TicketStore) -> None:
    unknown = store.create(complaint(category="其他", category_confidence=0.99))
    assert unknown.status is Status.RECEIVED
    gas = store.create(
        complaint(summary="楼道里有燃气泄漏的味道", category=None, category_confidence=None)
    )
    assert gas.department == "市住房和城乡建设局" and gas.sla_class == "emergency"


def test_illegal_transition_raises_and_changes_nothing(store: TicketStore) -> None:
    ticket = store.create(complaint())
    before = store.get(ticket.number)
    with pytest.raises(IllegalTransition):
        store.rate(ticket.number, 3, True, "", CITIZEN)
    with pytest.raises(IllegalTransition):
        store.dispatch(ticket.number, "市教育局", DISPATCHER)
    with pytest.raises(InvalidInput):
        store.reply(ticket.number, "  ", ENV_STAFF)
    with pytest.raises(InvalidInput):
        store.transfer(ticket.number, "市不存在局", "错派", DISPATCHER)
    after = store.get(ticket.number)
    assert after == before
    assert len(store.history(ticket.number)) == 2


def test_department_staff_act_only_on_their_own_tickets(store: TicketStore) -> None:
    ticket = store.create(complaint())
    with pytest.raises(PermissionDenied):
        store.start(ticket.number, HOUSING_STAFF)
    with pytest.raises(PermissionDenied):
        store.add_note(ticket.number, "不是我们的", HOUSING_STAFF)
    with pytest.raises(PermissionDenied):
        store.contact(ticket.number, HOUSING_STAFF)
    with pytest.raises(PermissionDenied):
        store.list(actor=HOUSING_STAFF, department="市生态环境局")
    assert store.list(actor=HOUSING_STAFF) == []
    assert [t.number for t in store.list(actor=ENV_STAFF)] == [ticket.number]
    with pytest.raises(PermissionDenied):
        store.dispatch(ticket.number, "市教育局", ENV_STAFF)  # staff do not dispatch
    with pytest.raises(PermissionDenied):
        store.reply(ticket.number, "已办", CITIZEN)
    with pytest.raises(PermissionDenied):
        store.list(actor=CITIZEN, sender_id="someone-else")
    assert [t.number for t in store.list(actor=CITIZEN)] == [ticket.number]
    assert store.list(actor=Actor.citizen("someone-else")) == []
    assert store.start(ticket.number, ENV_STAFF).status is Status.IN_PROGRESS
    assert store.get(ticket.number).version == 3


def test_return_and_transfer_need_a_reason(store: TicketStore) -> None:
    ticket = store.create(complaint())
    with pytest.raises(InvalidInput):
        store.transfer(ticket.number, None, " ", ENV_STAFF)
    with pytest.raises(PermissionDenied):  # 转派 is the dispatch centre's call
        store.transfer(ticket.number, "市住房和城乡建设局", "不归我们", ENV_STAFF)
    back = store.return_to_dispatch(ticket.number, "属于住建部门职责", ENV_STAFF)
    assert back.status is Status.RECEIVED and back.department is None
    store.dispatch(back.number, "市生态环境局", DISPATCHER)
    moved = store.transfer(ticket.number, "市住房和城乡建设局", "涉及小区物业", DISPATCHER)
    assert moved.status is Status.DISPATCHED and moved.department == "市住房和城乡建设局"
    assert store.start(ticket.number, HOUSING_STAFF).status is Status.IN_PROGRESS
    events = store.history(ticket.number)
    assert [e["action"] for e in events][-3:] == ["dispatch", "transfer", "start"]
    assert events[-2]["reason"] == "涉及小区物业"


def test_reopen_within_window_and_close_outside(store: TicketStore, clock: Clock) -> None:
    first = store.create(complaint())
    store.start(first.number, ENV_STAFF)
    store.reply(first.number, "已处理", ENV_STAFF)
    reopened = store.rate(first.number, 1, False, "没有解决", CITIZEN)  # straight from replied
    assert reopened.status is Status.IN_PROGRESS and reopened.reopen_count == 1
    assert reopened.department == "市生态环境局"
    assert reopened.deadline > clock.now

    second = store.create(complaint(summary="另一件事：路灯不亮", place="光明路"))
    store.reply(second.number, "已修复", ENV_STAFF)
    store.request_follow_up(second.number, DISPATCHER)
    clock.advance(days=store.settings.ticket_reopen_days + 1)
    late = store.rate(second.number, 2, False, "还是不亮", CITIZEN)
    assert late.status is Status.CLOSED
    assert store.history(second.number)[-1]["payload"]["reopen_refused"]


def test_merge_duplicate_into_primary(store: TicketStore) -> None:
    primary = store.create(complaint())
    duplicate = store.create(complaint(summary="幸福小区烧烤摊油烟很大晚上还营业", sender_id="u2"))
    assert primary.number in duplicate.probable_duplicates
    listed = store.probable_duplicates()
    assert (listed[0]["ticket"], listed[0]["probable_duplicate_of"]) == (
        duplicate.number,
        primary.number,
    )
    with pytest.raises(InvalidInput):
        store.merge(duplicate.number, duplicate.number, DISPATCHER)
    merged = store.merge(duplicate.number, primary.number, DISPATCHER)
    assert merged.status is Status.MERGED and merged.duplicate_of == primary.number
    assert store.history(primary.number)[-1]["action"] == "merged_in"
    with pytest.raises(IllegalTransition):
        store.start(duplicate.number, ENV_STAFF)
    with pytest.raises(InvalidInput):
        store.merge(primary.number, duplicate.number, DISPATCHER)
    assert store.probable_duplicates() == []


def test_different_place_is_not_a_duplicate(store: TicketStore) -> None:
    store.create(complaint())
    other = store.create(complaint(place="光明小区", summary="光明小区烧烤摊油烟扰民"))
    assert other.probable_duplicates == ()


def test_idempotent_creation(store: TicketStore) -> None:
    first = store.create(complaint(idempotency_key="wechat:msg-1"))
    again = store.create(complaint(idempotency_key="wechat:msg-1", summary="重试的请求"))
    assert again.number == first.number and len(store.list()) == 1
    other = store.create(complaint(idempotency_key="wechat:msg-2"))
    assert other.number != first.number


def test_get_accepts_typed_numbers_and_reports_missing(store: TicketStore) -> None:
    ticket = store.create(complaint())
    typed = ticket.number.lower().replace("-", " ")
    assert store.get(typed).number == ticket.number
    with pytest.raises(TicketNotFound):
        store.get("GD20000101-9999")


def test_citizen_adds_information_and_staff_note(store: TicketStore) -> None:
    ticket = store.create(complaint())
    updated = store.add_info(ticket.number, "补充：新电话13900001111", CITIZEN)
    assert updated.transcript[-1]["speaker"] == "citizen"
    assert "13900001111" not in str(updated.transcript)
    store.add_note(ticket.number, "已电话联系商户", ENV_STAFF)
    events = store.history(ticket.number)
    assert [e["action"] for e in events][-2:] == ["add_info", "note"]
    assert "13900001111" not in str(events)


def test_contact_details_are_for_staff_and_audited(store: TicketStore) -> None:
    ticket = store.create(complaint())
    contact = store.contact(ticket.number, ENV_STAFF)
    assert contact.phone == "13812345678" and contact.name == "张三丰"
    assert store.history(ticket.number)[-1]["action"] == "contact_viewed"
    with pytest.raises(PermissionDenied):
        store.contact(ticket.number, CITIZEN)


def test_stale_version_is_a_conflict(store: TicketStore) -> None:
    ticket = store.create(complaint())
    store.add_note(ticket.number, "first", ENV_STAFF, expected_version=ticket.version)
    with pytest.raises(ConflictError):
        store.add_note(ticket.number, "second", ENV_STAFF, expected_version=ticket.version)


def test_supervisor_closes_an_unreachable_follow_up(store: TicketStore) -> None:
    ticket = store.create(complaint())
    store.reply(ticket.number, "已处理", ENV_STAFF)
    store.request_follow_up(ticket.number, Actor.system())
    with pytest.raises(InvalidInput):
        store.close(ticket.number, "", SUPERVISOR)
    closed = store.close(ticket.number, "三次回访未接通", SUPERVISOR)
    assert closed.status is Status.CLOSED
    with pytest.raises(PermissionDenied):
        store.close(ticket.number, "x", Actor(Role.DEPARTMENT, "li", "市生态环境局"))


def test_listing_filters(store: TicketStore) -> None:
    first = store.create(complaint())
    second = store.create(
        complaint(
            summary="公交车到站不停",
            place="人民路",
            channel="wechat",
            sender_id="u2",
            category="交通运输",
        )
    )
    assert [t.number for t in store.list()] == [second.number, first.number]
    assert [t.number for t in store.list(channel="wechat")] == [second.number]
    assert [t.number for t in store.list(sender_id="user-1")] == [first.number]
    assert [t.number for t in store.list(query="公交")] == [second.number]
    assert [t.number for t in store.list(query=first.number.lower())] == [first.number]
    assert [t.number for t in store.list(department="市交通运输局")] == [second.number]
    assert len(store.list(limit=1)) == 1
    with pytest.raises(InvalidInput):
        store.list(status="lost")


def test_a_known_citizen_touches_only_their_own_tickets(store: TicketStore) -> None:
    mine = store.create(complaint(sender_id="alice"))
    theirs = store.create(complaint(sender_id="bob", summary="另一件：路灯不亮", place="光明路"))
    alice = Actor.citizen("alice")
    assert store.add_info(mine.number, "补充照片", alice).number == mine.number
    with pytest.raises(PermissionDenied):
        store.add_info(theirs.number, "不是我的", alice)
    store.reply(theirs.number, "已处理", ENV_STAFF)
    with pytest.raises(PermissionDenied):
        store.rate(theirs.number, 1, False, "", alice)
    assert [t.number for t in store.list(actor=alice)] == [mine.number]
    with pytest.raises(PermissionDenied):
        store.list(actor=alice, sender_id="bob")
    assert store.rate(theirs.number, 5, True, "", Actor.citizen("bob")).status is Status.CLOSED


def test_rating_without_a_score(store: TicketStore) -> None:
    ticket = store.create(complaint())
    store.reply(ticket.number, "已处理", ENV_STAFF)
    with pytest.raises(InvalidInput):
        store.rate(ticket.number, 6, True, "", CITIZEN)
    closed = store.rate(ticket.number, 0, True, "解决了", CITIZEN)
    assert closed.status is Status.CLOSED and closed.rating is None


def test_working_day_helper_for_actions() -> None:
    from datetime import date

    from bot.tickets.calendar import is_working_day

    assert is_working_day(date(2026, 2, 14)) and not is_working_day(date(2026, 10, 2))


def test_the_centre_answers_a_call_back_itself_without_dispatching_it(
    store: TicketStore,
) -> None:
    """直接答复: a call-back (转人工 out of hours) needs no department to be answered."""
    ticket = store.create(complaint(kind="callback", category=None, category_confidence=None,
                                    summary="想问一下社保卡丢了怎么补办"))
    assert ticket.status is Status.RECEIVED and ticket.department is None
    with pytest.raises(PermissionDenied):  # no department's staff may touch it yet
        store.reply(ticket.number, "已电话答复", ENV_STAFF)
    replied = store.reply(ticket.number, "已电话答复：带身份证到社保窗口补办", DISPATCHER)
    assert replied.status is Status.REPLIED and replied.reply
    assert store.request_follow_up(ticket.number, DISPATCHER).status is Status.FOLLOW_UP


def test_find_filters_in_one_read_and_masks_like_every_view(store: TicketStore) -> None:
    """The read side for pages of tickets (Open311, exports): filters, newest first."""
    noise = store.create(complaint(summary="幸福小区噪音，电话13812345678", idempotency_key="f1"))
    road = store.create(complaint(category="城乡建设", summary="路灯坏了", idempotency_key="f2",
                                  channel="open311"))
    assert [v.number for v in store.find(numbers=[road.number, noise.number])] == [
        road.number, noise.number]
    assert [v.number for v in store.find(categories=["城乡建设"])] == [road.number]
    assert [v.number for v in store.find(channels=["open311"], published=True)] == [road.number]
    assert store.find(statuses=[Status.CLOSED]) == []
    assert store.find(numbers=[noise.number.lower()])[0].number == noise.number
    assert "13812345678" not in store.find(numbers=[noise.number])[0].summary
