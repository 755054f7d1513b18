"""Danger to life over chat, on the running stack: the number first, an emergency ticket
routed at once, and no "已取消" for what was already sent (issue 21)."""

from __future__ import annotations

import re

import pytest

from bot.settings import load_settings
from bot.tickets import TicketStore
from tests.stack import Stack
from tests.stack import fresh_sender as fresh

pytestmark = pytest.mark.stack

TICKET = re.compile(r"GD\d{8}-\d{4}")



def open_store(stack: Stack) -> TicketStore:
    return TicketStore(stack.database_url, settings=load_settings(stack.env))


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("着火了！我们小区地下车库有辆电动车起火了，烟很大！", "119"),
        ("你好，我家老人走失了，早上出门到现在还没回来", "110"),
        ("谢谢，我爸刚才喝了农药", "120"),  # opens like thanks; the danger decides
        ("投诉一下，楼道里一股很重的煤气味", "119"),
        ("我真的不想活了，活着没意思", "12356"),  # the crisis line, not "describe the patient"
    ],
)
def test_danger_gets_the_number_and_an_emergency_ticket_routed_at_once(
    stack: Stack, text: str, number: str
) -> None:
    reply = stack.say_text(fresh("danger"), text)
    assert number in reply, reply
    assert reply.index(number) < (TICKET.search(reply) or re.search("$", reply)).start()
    found = TICKET.search(reply)
    assert found, reply
    store = open_store(stack)
    try:
        ticket = store.get(found.group(0))
    finally:
        store.dispose()
    assert ticket.kind == "emergency" and ticket.sla_class == "emergency"
    assert ticket.status.value == "dispatched" and ticket.department, ticket
    assert ticket.description == text  # stored as the citizen wrote it


def test_cancel_after_an_emergency_does_not_claim_to_withdraw_it(stack: Stack) -> None:
    who = fresh("cancel")
    reply = stack.say_text(who, "着火了！楼下饭店厨房起火了")
    number = TICKET.search(reply)
    assert number, reply
    answer = stack.say_text(who, "取消")
    assert number.group(0) in answer and "不能撤回" in answer, answer
    assert "已取消" not in answer
    store = open_store(stack)
    try:
        assert store.get(number.group(0)).status.value == "dispatched"
    finally:
        store.dispose()


def test_asking_for_an_emergency_number_files_nothing(stack: Stack) -> None:
    reply = stack.say_text(fresh("ask"), "急救电话是多少")
    assert "120" in reply and not TICKET.search(reply), reply


def test_cancel_with_nothing_in_progress_says_so(stack: Stack) -> None:
    answer = stack.say_text(fresh("nothing"), "取消")
    assert "已取消" not in answer and "没有正在登记" in answer, answer
