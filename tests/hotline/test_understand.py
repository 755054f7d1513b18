"""Deciding what a call was about, from parse data shaped like the model's (no model needed).

The model's own accuracy is tested in tests/nlu; here the rules that combine the
turns of one call: votes, ties, cue words, referrals, category, summary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.hotline.formats import Call, Turn
from connectors.hotline.understand import SUMMARY_CHARS, citizen_texts, understand, units_of

TZ = ZoneInfo("Asia/Shanghai")


def parse(text: str, intent: str, confidence: float = 0.95, **extra: Any) -> dict[str, Any]:
    return {"text": text, "intent": {"name": intent, "confidence": confidence}, **extra}


Reading = str | dict[str, float] | tuple[dict[str, float], dict[str, Any]]


def ranked(text: str, reading: Reading) -> dict[str, Any]:
    """Parse data as the model gives it: an intent, or a ranking (calibrated
    probabilities, the top first; under 0.5 FallbackClassifier puts nlu_fallback on
    top), optionally with more fields (the EmergencyDetector's ``emergency``)."""
    if isinstance(reading, str):
        return parse(text, reading)
    probabilities, extra = reading if isinstance(reading, tuple) else (reading, {})
    ranking = [
        {"name": name, "confidence": p}
        for name, p in sorted(probabilities.items(), key=lambda item: -item[1])
    ]
    top = ranking[0]
    if top["confidence"] < 0.5:
        ranking.insert(0, {"name": "nlu_fallback", "confidence": 0.5})
        top = ranking[0]
    return {"text": text, "intent": top, "intent_ranking": ranking, **extra}


def conversation(*turns: tuple[str, str] | tuple[str, str, Reading]):  # type: ignore[no-untyped-def]
    """A whole call: ("agent", text) and ("citizen", text, what the model reads)."""
    call = Call(
        "X",
        datetime(2026, 11, 27, 9, tzinfo=TZ),
        tuple(Turn(t[0], t[1]) for t in turns),
        "f",
        1,
    )
    units, leftovers = units_of(citizen_texts(call))  # normalized, as the ingester does
    parses = [ranked(u.text, turns[u.turn][2]) for u in units]  # type: ignore[misc]
    return understand(call, units, parses, leftovers)


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
    intents = {i: intent for i, (s, _, intent) in enumerate(turns) if s == "citizen"}
    parses = [parse(u.text, intents.get(u.turn, "inform"), **extra) for u in units]
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


# -- how a call is decided (docs/transcripts.md) ---------------------------------------

ANSWER = "可以的，带上身份证和户口本到街道便民服务中心办理，当天就能办好。"


def test_a_question_the_agent_answered_is_a_contact_even_when_the_model_hears_a_complaint() -> None:
    # long spoken questions read like complaints to a model trained on short messages
    meaning = conversation(
        ("agent", "您好，12345。"),
        (
            "citizen",
            "你好，我看楼下贴了通知，说明天要停水，是真的吗，停到几点啊？",
            {"complain": 0.9, "inquire": 0.1},
        ),
        ("agent", "明天上午九点到下午五点管网维修停水，五点以后恢复。"),
        ("citizen", "好的，知道了。", {"affirm": 0.95, "complain": 0.05}),
    )
    assert (meaning.ticket, meaning.kind, meaning.intent, meaning.reason) == (
        False,
        "inquiry",
        "inquire",
        "answered",
    )


def test_a_grievance_is_a_ticket_even_when_the_agent_gave_advice_and_was_thanked() -> None:
    meaning = conversation(
        (
            "citizen",
            "超市卖过期面包，都长毛了，货架上还有好多。",
            {"complain": 0.8, "report": 0.15},
        ),
        ("agent", "这类问题您也可以直接拨打市场监管热线反映。"),
        ("citizen", "行，谢谢啊。", {"thank": 0.97}),
    )
    assert (meaning.ticket, meaning.kind, meaning.reason) == (True, "complaint", "intent:complain")


def test_a_statement_nobody_answered_is_a_ticket_of_the_act_it_leans_to() -> None:
    # the model is unsure (complain 0.35) and no agent answered: when in doubt, a ticket
    meaning = conversation(
        ("agent", "您好，请讲。"),
        (
            "citizen",
            "锦绣花园门口的路灯坏了半个月了，晚上黑漆漆的。",
            {"inform": 0.45, "complain": 0.35, "report": 0.1},
        ),
    )
    assert (meaning.ticket, meaning.kind, meaning.reason) == (True, "complaint", "unanswered")


def test_an_unanswered_question_is_an_inquiry_ticket() -> None:
    meaning = conversation(
        ("citizen", "我想问下暖气费是按面积收还是按热表收？", {"complain": 0.7, "inquire": 0.3}),
    )
    assert (meaning.ticket, meaning.kind, meaning.intent, meaning.reason) == (
        True,
        "inquiry",
        "inquire",
        "unanswered",
    )
    cannot = conversation(
        ("citizen", "加装电梯有补贴吗？", {"inquire": 0.9}),
        ("agent", "这个补贴标准我这边暂时查不到。"),
    )
    assert (cannot.ticket, cannot.kind) == (True, "inquiry")


def test_a_question_then_a_complaint_is_a_complaint() -> None:
    meaning = conversation(
        ("citizen", "请问大件垃圾哪天收？", {"inquire": 0.95}),
        ("agent", "每周六上午统一收运，需要提前一天在社区登记。"),
        ("citizen", "还有，小区西门的垃圾桶五六天没人清了，臭得不行。", {"complain": 0.97}),
    )
    assert (meaning.ticket, meaning.kind) == (True, "complaint")
    # the summary is the complaint's; the question settled on the call is left out
    assert "西门的垃圾桶" in meaning.summary and "大件垃圾" not in meaning.summary


def test_the_explanation_before_an_announced_question_belongs_to_the_question() -> None:
    meaning = conversation(
        (
            "citizen",
            "我在开发区厂里上班，单位一直给我交着公积金。",
            {"complain": 0.55, "inform": 0.4},
        ),
        ("agent", "嗯，您说。"),
        ("citizen", "我就想问问租房能不能提公积金？", {"complain": 0.6, "inquire": 0.4}),
        ("agent", ANSWER),
        ("citizen", "哦哦，原来不用房东开证明啊，那太好了。", {"complain": 0.94}),
    )
    assert (meaning.ticket, meaning.reason) == (False, "answered")


def test_a_promise_to_follow_up_makes_a_ticket() -> None:
    meaning = conversation(
        ("citizen", "学校门口能不能装个红绿灯？", {"suggest": 0.93, "inquire": 0.05}),
        ("agent", "感谢您的建议，我们会反馈给交警部门。"),
    )
    assert (meaning.ticket, meaning.kind, meaning.reason) == (True, "suggestion", "referral:反馈给")


def test_greetings_only_is_a_contact_with_nothing_to_follow_up() -> None:
    meaning = conversation(
        ("agent", "您好，12345热线，请讲。"),
        ("citizen", "喂？喂？", {"greet": 0.99}),
        ("agent", "您好，请问能听到吗？"),
    )
    assert (meaning.ticket, meaning.reason) == (False, "no request")


# -- emergencies: any one signal is enough ---------------------------------------------


def test_the_rules_make_an_emergency_whatever_the_model_read() -> None:
    # no EmergencyDetector in the pipeline (an older model): the rules run on the text
    meaning = conversation(
        (
            "citizen",
            "着火了！车库有辆电动车起火了，烟很大！",
            {"complain": 0.62, "emergency": 0.38},
        ),
    )
    assert (meaning.ticket, meaning.kind, meaning.intent) == (True, "emergency", "emergency")
    assert meaning.reason == "emergency:keyword:着火"
    assert meaning.danger and meaning.danger["response"] == "utter_emergency_fire"


def test_the_detectors_finding_in_the_parse_is_enough() -> None:
    found = {"response": "utter_emergency_gas", "keyword": "煤气味", "question": False}
    meaning = conversation(
        (
            "citizen",
            "楼道里一股子怪味儿",
            ({"emergency": 1.0, "complain": 0.9}, {"emergency": found}),
        ),
        ("agent", "好的，这个我们会转交相关部门。"),
    )
    assert (meaning.kind, meaning.danger) == ("emergency", found)


def test_the_models_own_emergency_reading_is_enough() -> None:
    meaning = conversation(
        (
            "citizen",
            "村后头的河发大水了，隔壁老两口困在屋里出不来！",
            {"emergency": 0.87, "request_help": 0.1},
        ),
        ("agent", "请您说一下是哪个村？"),
    )
    assert (meaning.kind, meaning.reason) == ("emergency", "emergency:intent:0.87")


def test_an_agent_handing_over_to_110_119_120_is_enough() -> None:
    meaning = conversation(
        (
            "citizen",
            "我闺女放学到现在还没回家，电话也打不通。",
            {"request_help": 0.6, "complain": 0.4},
        ),
        ("agent", "请您立即拨打110报警，同时把孩子的照片准备好。"),
    )
    assert (meaning.kind, meaning.reason) == ("emergency", "emergency:agent:110")


def test_asking_for_the_number_is_a_question_not_an_emergency() -> None:
    found = {"response": "utter_emergency_gas", "keyword": "燃气泄", "question": True}
    meaning = conversation(
        (
            "citizen",
            "燃气泄漏了应该打什么电话？",
            ({"emergency": 1.0, "inquire": 0.6, "request_help": 0.3}, {"emergency": found}),
        ),
        ("agent", "燃气泄漏可以拨打燃气公司的抢修电话，号码贴在燃气表上，紧急情况直接打119。"),
        ("citizen", "好，谢谢。", {"thank": 0.99}),
    )
    assert (meaning.ticket, meaning.kind) == (False, "inquiry")


# -- the record is the call as written -------------------------------------------------


def test_as_written_keeps_the_text_and_turns_spoken_numbers_into_digits() -> None:
    from connectors.hotline.understand import as_written

    assert as_written("施工，都半夜十二點了！") == "施工，都半夜十二點了！"
    assert as_written("我電話一三八一二三四五六七八，謝謝") == "我電話13812345678，謝謝"
    assert as_written("１３８１２３４５６７８") == "13812345678"


def test_the_summary_quotes_the_call_as_written() -> None:
    meaning = conversation(
        ("agent", "您好，請講。"),
        ("citizen", "你好，我要投訴幸福小區門口的燒烤攤，每天晚上都到半夜！", {"complain": 0.99}),
        ("citizen", "我電話一三八一二三四五六七八。", {"inform": 0.9}),
    )
    assert meaning.summary.startswith("我要投訴幸福小區門口的燒烤攤，每天晚上都到半夜！")
    assert "138" not in meaning.summary and "一三八" not in meaning.summary
    assert meaning.description.splitlines() == [
        "你好，我要投訴幸福小區門口的燒烤攤，每天晚上都到半夜！",
        "我電話13812345678。",
    ]


def test_a_complaint_asked_as_a_question_and_sent_elsewhere_is_still_a_ticket() -> None:
    sent_elsewhere = conversation(
        ("citizen", "烧烤摊天天吵到后半夜，这到底归谁管啊？", {"complain": 0.99}),
        ("agent", "占道烧烤归城管管，您可以直接拨打城管热线12319反映。"),
        ("citizen", "唉，行吧。", {"out_of_scope": 0.64}),
    )
    assert (sent_elsewhere.ticket, sent_elsewhere.kind) == (True, "complaint")
    # announced as a question ("我想咨询一下"): answered where to complain, settled
    asked = conversation(
        ("citizen", "我想咨询一下，物业不作为应该去哪个部门投诉？", {"complain": 0.99}),
        ("agent", "可以向区住建局的物业管理科投诉，也可以先找社区居委会协调。"),
    )
    assert (asked.ticket, asked.reason) == (False, "answered")


def test_danger_beyond_the_parsed_chunks_of_a_huge_turn_is_still_found() -> None:
    text = "楼道里堆满了杂物，物业不管。" * 100 + "哎呀不好，那堆纸箱子烧起来了！"
    meaning = conversation(("citizen", text, {"complain": 0.99}))
    assert (meaning.kind, meaning.reason) == ("emergency", "emergency:keyword:烧起来")


def test_a_grievance_after_an_answer_is_no_reaction() -> None:
    meaning = conversation(
        ("citizen", "请问物业费标准是多少？", {"inquire": 0.95}),
        ("agent", "普通住宅物业费按合同约定，一般每平方一块五左右。"),
        ("citizen", "原来的物业就不管事，换了新物业还是不管，垃圾堆着没人清。", {"complain": 0.97}),
    )
    assert (meaning.ticket, meaning.kind) == (True, "complaint")
