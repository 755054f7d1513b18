"""The emergency rules (data/emergency.yml): the number to call for what citizens write.

The rules are the safety net under the NLU: whatever intent the model reads, a
message that names a danger to life gets the number to call first. Phrasings
here are ones a model misread, in the words citizens use (also traditional
characters, which are normalized before matching).
"""

from __future__ import annotations

import pytest

from bot.model import DOMAIN
from nlu.emergency import recognise, rules


@pytest.mark.parametrize(
    ("text", "response"),
    [
        ("楼下有人正在偷电动车", "utter_emergency_police"),
        ("我家孩子被人抱走了", "utter_emergency_police"),
        ("我被人打了，他们还在外面", "utter_emergency_police"),
        ("有人在撬锁，我一个人在家", "utter_emergency_police"),
        ("公园里我家老人走失了，到处找不到", "utter_emergency_police"),
        ("隔壁工厂发生爆炸了", "utter_emergency_fire"),
        ("我被困在电梯里出不去", "utter_emergency_fire"),
        ("着火了！我们小区地下车库有辆电动车起火了，烟很大！", "utter_emergency_fire"),
        ("隔壁老房子塌了，下面好像有人", "utter_emergency_fire"),
        ("我爸喝了农药", "utter_emergency_medical"),
        ("我不想活了", "utter_emergency_self_harm"),
        ("活着没意思，我想吃安眠药自杀", "utter_emergency_self_harm"),
        ("不想活了，刚吃了安眠药", "utter_emergency_self_harm"),  # the reply says 120 first
        ("我女儿说她活不下去了，把自己锁在房间里", "utter_emergency_self_harm"),
        ("厨房煤气味很重，还有人晕倒了", "utter_emergency_gas"),
        ("樓下失火了，煙很大", "utter_emergency_fire"),  # traditional characters
        ("有个小孩掉进河里了", "utter_emergency_flood"),
        ("地下室进水了，水淹到腰了，老人出不来", "utter_emergency_flood"),
        # no single keyword: a family word next to 走丢/不见了, a threat, a weapon (patterns)
        ("我爷爷走丢了，拄着拐杖，耳朵不好", "utter_emergency_police"),
        ("我妈早上出门后就找不到了", "utter_emergency_police"),
        ("孩子在超市附近不见了", "utter_emergency_police"),
        ("我老公打我，我现在很危险", "utter_emergency_police"),
        ("邻居说要弄死我", "utter_emergency_police"),
        ("有个男的拿着刀在小区里乱挥", "utter_emergency_police"),
        ("天然气管道被挖断了，味道很大", "utter_emergency_gas"),
        ("孩子被锁在车里了", "utter_emergency_fire"),
        ("隔壁仓库冒黑烟了", "utter_emergency_fire"),
        ("我爷爷突然说不出话，半边身子动不了", "utter_emergency_medical"),
        ("奶奶摔倒了起不来", "utter_emergency_medical"),
        ("有人掉水里了", "utter_emergency_flood"),
    ],
)
def test_emergencies_get_their_number(text: str, response: str) -> None:
    danger = recognise(text)
    assert danger is not None and danger.response == response
    assert not danger.question


@pytest.mark.parametrize(
    "text",
    [
        "我们被噪音困扰很久了",
        "这个问题让我们被困扰了好几年",
        "超市搞跳楼价，占道经营",
        "小区停车乱收费",
        "我的快递不见了，快递员也不接电话",
        "下水道堵了，一下雨路上就积水",
        "家里燃气灶打不着火了，物业也不来修",
        "孩子的作业本不见了",
        "我爸的医保卡找不到了",
        "老公手机丢了怎么补卡",
        "他一直打我电话骚扰",
        "工作人员说会打我的电话，到现在也没打",
        "请打我们小区物业的电话问问",
        "燃气表坏了，燃气费怎么交",
    ],
)
def test_ordinary_complaints_are_no_emergency(text: str) -> None:
    assert recognise(text) is None


@pytest.mark.parametrize("text", ["急救电话是多少", "燃气泄漏了应该打什么电话", "怎么预防火灾"])
def test_asking_for_the_number_is_a_question_not_an_emergency(text: str) -> None:
    danger = recognise(text)
    assert danger is not None and danger.question


def test_a_pattern_that_does_not_compile_is_a_clear_error(tmp_path) -> None:
    from nlu.emergency import EmergencyRules, EmergencyRulesError

    broken = tmp_path / "emergency.yml"
    broken.write_text(
        "rules:\n  - response: utter_emergency_police\n    keywords: [抢劫]\n"
        "    patterns: ['(走丢']\n", encoding="utf-8")
    with pytest.raises(EmergencyRulesError, match="utter_emergency_police"):
        EmergencyRules.load(broken)


def test_every_rule_answers_with_a_response_of_the_domain() -> None:
    from rasa.shared.core.domain import Domain

    responses = Domain.load(str(DOMAIN)).responses
    assert rules().rules and rules().questions
    for response, keywords in rules().rules:
        assert response in responses
        assert keywords and all(keywords)
