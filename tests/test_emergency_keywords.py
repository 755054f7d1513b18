"""The emergency keywords (data/emergency.yml): the number to call for what citizens write.

The keywords are the safety net under the NLU: when a message read as a complaint
or a request for help names an emergency, the citizen is told whom to call before
any form runs. Phrasings here are ones the cross-validated model misread.
"""

from __future__ import annotations

import pytest

from actions.support import emergency_rules, matched_emergency
from bot.model import DOMAIN


@pytest.mark.parametrize(
    ("text", "response"),
    [
        ("楼下有人正在偷电动车", "utter_emergency_police"),
        ("我家孩子被人抱走了", "utter_emergency_police"),
        ("我被人打了，他们还在外面", "utter_emergency_police"),
        ("有人在撬锁，我一个人在家", "utter_emergency_police"),
        ("隔壁工厂发生爆炸了", "utter_emergency_fire"),
        ("我被困在电梯里出不去", "utter_emergency_fire"),
        ("我爸喝了农药", "utter_emergency_medical"),
        ("厨房煤气味很重，还有人晕倒了", "utter_emergency_gas"),
    ],
)
def test_emergencies_get_their_number(text: str, response: str) -> None:
    assert matched_emergency(text) == response


@pytest.mark.parametrize(
    "text",
    [
        "我们被噪音困扰很久了",
        "这个问题让我们被困扰了好几年",
        "超市搞跳楼价，占道经营",
        "小区停车乱收费",
    ],
)
def test_ordinary_complaints_are_no_emergency(text: str) -> None:
    assert matched_emergency(text) is None


def test_every_rule_answers_with_a_response_of_the_domain() -> None:
    from rasa.shared.core.domain import Domain

    responses = Domain.load(str(DOMAIN)).responses
    for response, keywords in emergency_rules():
        assert response in responses
        assert keywords and all(keywords)
