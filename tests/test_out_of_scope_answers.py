"""What a citizen is told when a message reads as no government matter, or the
knowledge base knows nothing of it (``actions/inquiry.py``, the real knowledge base).

The intent model can read a government question in everyday words as off-domain; the
knowledge base is asked before the citizen is told "这个我帮不上忙".
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.inquiry import ActionAnswerInquiry, ActionOutOfScope


def _run(action: Any, text: str, ranking: list[tuple[str, float]]) -> list[dict[str, Any]]:
    parse = {"text": text, "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
             "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
             "entities": []}
    events = [{"event": "user", "text": text, "parse_data": parse, "timestamp": 1.0}]
    tracker = Tracker("webchat:test", {}, parse, events, False, None, {}, "action_listen")
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, tracker, {}))
    return dispatcher.messages


@pytest.mark.parametrize("text", ["随迁子女上学有什么条件", "违章罚款去哪交", "异地就医怎么备案"])
def test_a_government_question_read_as_off_domain_is_still_answered(text: str) -> None:
    said = _run(ActionOutOfScope(), text, [("out_of_scope", 0.9), ("inquire", 0.1)])
    assert [m["response"] for m in said] == ["utter_kb_answer"], said
    assert said[0]["answer"] and said[0]["source"]


@pytest.mark.parametrize("text", ["怎么做红烧肉", "帮我订一张去东京的机票", "替我回复这封邮件"])
def test_an_off_domain_request_gets_the_honest_answer(text: str) -> None:
    said = _run(ActionOutOfScope(), text, [("out_of_scope", 0.99)])
    assert [m["response"] for m in said] == ["utter_out_of_scope"]


def test_an_unknown_question_that_may_be_off_domain_is_not_sent_to_a_person() -> None:
    said = _run(ActionAnswerInquiry(), "去泰国旅游要带什么",
                [("inquire", 0.68), ("out_of_scope", 0.31)])
    assert [m["response"] for m in said] == ["utter_out_of_scope"]


def test_an_unknown_government_question_offers_a_person() -> None:
    said = _run(ActionAnswerInquiry(), "区里的防空洞什么时候对外开放",
                [("inquire", 0.97), ("out_of_scope", 0.02)])
    assert [m["response"] for m in said] == ["utter_kb_not_found"]
