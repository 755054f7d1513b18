"""The foundation, tried as a citizen and an operator would: over REST and the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.stack import Stack

pytestmark = pytest.mark.stack

TICKET = re.compile(r"GD\d{8}-\d{4}")
COMPLAINT = "我要投诉小区楼下烧烤店每天半夜还在营业，油烟和噪音很大"


def file_complaint(stack: Stack, sender: str, phone: str = "13812345678") -> str:
    """Walk the complaint form to the end and return the ticket number."""
    reply = stack.say_text(sender, COMPLAINT)
    assert "地" in reply  # asked where it happens
    reply = stack.say_text(sender, "幸福里小区3栋楼下")
    assert "时候" in reply  # asked since when
    reply = stack.say_text(sender, "最近一个月每天晚上")
    assert "手机号" in reply  # asked for a phone, which may be declined
    reply = stack.say_text(sender, phone)
    assert "幸福里小区3栋楼下" in reply and "确认" in reply  # read back
    assert phone not in reply  # the read-back masks the phone
    reply = stack.say_text(sender, "确认")
    found = TICKET.search(reply)
    assert found, reply
    return found.group(0)


def test_greeting_offers_what_the_bot_can_do(stack: Stack) -> None:
    messages = stack.say("greet-1", "你好")
    assert "您好" in messages[0]["text"]
    assert {b["title"] for b in messages[0].get("buttons", [])} >= {"我要投诉", "查询工单"}


def test_complaint_becomes_a_ticket_and_its_status_can_be_asked(stack: Stack) -> None:
    number = file_complaint(stack, "citizen-1")
    reply = stack.say_text("citizen-1", f"我的工单 {number} 处理到哪一步了")
    assert number in reply
    assert "找到" not in reply  # not "没有找到"

    listed = json.loads(stack.citizenbot("tickets", "list", "--json").stdout)
    ticket = next(t for t in listed if t["number"] == number)
    assert ticket["channel"] == "rest"
    assert ticket["status"] in {"received", "dispatched"}
    for key in ("category", "department", "created_at", "summary", "source"):
        assert key in ticket
    assert "烧烤" in ticket["summary"]
    assert "13812345678" not in json.dumps(listed, ensure_ascii=False)


def test_phone_may_be_declined(stack: Stack) -> None:
    stack.say_text("citizen-2", COMPLAINT)
    stack.say_text("citizen-2", "人民路88号")
    stack.say_text("citizen-2", "昨天晚上十点")
    reply = stack.say_text("citizen-2", "不留")
    assert "确认" in reply
    reply = stack.say_text("citizen-2", "确认")
    assert TICKET.search(reply), reply


def test_wrong_ticket_number_gets_a_clear_answer(stack: Stack) -> None:
    reply = stack.say_text("citizen-3", "帮我查一下工单 GD20200101-9999")
    assert "没有找到" in reply


def test_question_the_bot_cannot_answer_offers_a_human(stack: Stack) -> None:
    messages = stack.say("citizen-4", "asdkjh qwe zzxcv")
    titles = {b["title"] for m in messages for b in m.get("buttons", [])}
    text = "".join(m.get("text", "") for m in messages)
    assert "转人工" in titles or "人工" in text


@pytest.mark.parametrize(
    "message",
    ["", "   ", "投诉" * 5000, "😀😀😀🙏", "hello 我想 ask 一下 social security 怎么办"],
    ids=["empty", "blank", "10000-chars", "emoji", "mixed"],
)
def test_odd_messages_get_a_polite_answer(stack: Stack, message: str) -> None:
    messages = stack.say(f"odd-{uuid.uuid4().hex[:8]}", message)
    assert messages, "the citizen must always get an answer"
    assert all(m.get("text") or m.get("buttons") for m in messages)


def test_cli_help_lists_every_subcommand() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("citizenbot")), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("run", "train", "tickets"):
        assert re.search(rf"^\s*│?\s*{command}\s+\S", result.stdout, re.M), result.stdout
