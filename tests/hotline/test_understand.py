"""Deciding what a call was about, from parse data shaped like the model's (no model needed).

The model's own accuracy is tested in tests/nlu; here the rules that combine the
turns of one call: votes, ties, cue words, referrals, category, summary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.hotline.formats import Call, Turn
from connectors.hotline.understand import SUMMARY_CHARS, understand, units_of

TZ = ZoneInfo("Asia/Shanghai")


def parse(text: str, intent: str, confidence: float = 0.95, **extra: Any) -> dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": confidence}, **extra}


def decide(turns: list[tuple[str, str, str]], agent: str = "好的。", **extra: Any):  # type: ignore[no-untyped-def]
    """turns: (speaker, text, intent for citizen turns)."""
    call = Call(
        "X",
        datetime(2026, 11, 27, 9, tzinfo=TZ),
        (*(Turn(s, t) for s, t, _ in turns), Turn("agent", agent)),
        "f",
        1,
    )
    texts = [(i, t) for i, (s, t, _) in enumerate(turns) if s == "citizen"]
    units, leftovers = units_of(texts)
    intents = {t: intent for s, t, intent in turns if s == "citizen"}
    parses = [parse(u.text, intents.get(u.text, "inform"), **extra) for u in units]
    return understand(call, units, parses, leftovers)


def test_a_case_intent_outweighs_inquiries_and_ties_go_to_the_more_serious() -> None:
    meaning = decide(
        [
            ("citizen", "请问这个归谁管", "inquire"),
            ("citizen", "那我要投诉他们", "complain"),
            ("citizen", "另外我也有个建议", "suggest"),
        ]
    )
    assert (meaning.kind, meaning.ticket, meaning.intent) == ("complaint", True, "complain")
    assert meaning.intents == ("inquire", "complain", "suggest")


def test_cue_word_counts_when_the_model_says_only_inform() -> None:
    meaning = decide([("citizen", "我打电话就是想投诉楼下的饭店油烟太大", "inform")])
    assert (meaning.kind, meaning.reason) == ("complaint", "cue:投诉")


def test_inquiry_answered_is_a_contact_and_referred_is_a_ticket() -> None:
    answered = decide([("citizen", "请问居住证怎么办理", "inquire")], agent="带身份证去派出所。")
    assert (answered.kind, answered.ticket) == ("inquiry", False)
    referred = decide(
        [("citizen", "请问居住证怎么办理", "inquire")], agent="这个我帮您记录下来，转交相关部门。"
    )
    assert (referred.kind, referred.ticket) == ("inquiry", True)
    assert referred.reason.startswith("referral:")


def test_summary_is_short_starts_with_the_request_and_leaves_numbers_out() -> None:
    meaning = decide(
        [
            ("citizen", "喂，你好", "greet"),
            ("citizen", "你好，我要投诉幸福小区门口的烧烤摊，油烟特别大。", "complain"),
            ("citizen", "我电话是13812345678。", "inform"),
            ("citizen", "已经好几个月了，每天晚上十点以后还在营业，噪音也很吵。" * 3, "inform"),
            ("citizen", "谢谢", "thank"),
        ]
    )
    assert meaning.summary.startswith("我要投诉幸福小区门口的烧烤摊")
    assert len(meaning.summary) <= SUMMARY_CHARS
    assert "13812345678" not in meaning.summary


def test_category_is_the_length_weighted_mean_over_content_turns() -> None:
    call = Call(
        "X",
        datetime(2026, 11, 27, 9, tzinfo=TZ),
        (Turn("citizen", "你好"), Turn("citizen", "我要举报"), Turn("citizen", "河里" * 20)),
        "f",
        1,
    )
    units, _ = units_of([(0, "你好"), (1, "我要举报"), (2, "河里" * 20)])
    parses = [
        parse("你好", "greet", category="卫生计生", category_confidence=0.99),
        parse("我要举报", "report", category="商贸旅游", category_confidence=0.41),
        parse("河里" * 20, "inform", category="环境保护", category_confidence=0.9),
    ]
    meaning = understand(call, units, parses)
    assert meaning.category == "环境保护"
    assert meaning.category_confidence == round(40 * 0.9 / 44, 4)


def test_long_turns_are_parsed_in_bounded_chunks_and_numbers_still_found() -> None:
    text = "楼上漏水。" * 400 + "我的电话13812345678。"
    units, leftovers = units_of([(0, text)])
    assert len(units) == 4 and all(len(u.text) <= 256 for u in units)
    call = Call("X", datetime(2026, 11, 27, 9, tzinfo=TZ), (Turn("citizen", text),), "f", 1)
    meaning = understand(call, units, [parse(u.text, "complain") for u in units], leftovers)
    assert meaning.phone == "13812345678"
