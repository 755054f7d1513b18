"""Inquiry before case (issue 21): what the knowledge base answers is answered, not filed.

On the running stack, in phrasings not in the training data: a dialect request for
help that the knowledge base answers gets the answer and a way on to a case; a
complaint that also asks a question is still a case.
"""

from __future__ import annotations

import pytest

from tests.stack import Stack
from tests.stack import fresh_sender as fresh

pytestmark = pytest.mark.stack

FORM_QUESTION = "事情发生在哪里"



@pytest.mark.parametrize(
    "text",
    [
        "俺的社保卡丢了，这可咋整啊",
        "我那个社保卡弄丢了，帮帮忙，该咋办",
        "社保卡整丢了，上哪儿补去",
        "社保卡不见了怎么补办啊",
    ],
)
def test_a_request_the_knowledge_base_answers_gets_the_answer_first(
    stack: Stack, text: str
) -> None:
    reply = stack.say(fresh("kb"), text)
    said = "\n".join(m.get("text", "") for m in reply)
    assert "来源" in said and FORM_QUESTION not in said, said


def test_the_citizen_can_still_file_it_after_the_answer(stack: Stack) -> None:
    who = fresh("kb-then-case")
    text = "俺的社保卡丢了，这可咋整啊"
    reply = stack.say(who, text)
    payloads = [b["payload"] for m in reply for b in m.get("buttons", [])]
    assert "/request_help" in payloads, reply
    asked = stack.say_text(who, "/request_help")
    assert FORM_QUESTION in asked, asked


def test_a_complaint_that_also_asks_is_still_a_case(stack: Stack) -> None:
    reply = stack.say_text(
        fresh("complaint"), "我们小区门口的垃圾三天没人清理了，臭得不行，这归哪个部门管？"
    )
    assert FORM_QUESTION in reply, reply
