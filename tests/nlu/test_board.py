"""nlu.board: real citizen messages as intent examples, labelled by their words."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message

from nlu import board
from nlu.components.entity_extractor import is_annotated

needs_shared = pytest.mark.skipif(
    not board.HELD_OUT_FILE.exists(), reason="the shared citizen messages are not beside the repo"
)


@pytest.mark.parametrize(
    ("subject", "intent"),
    [
        ("举报K1区北欧春天开发商违法改建人防工程等问题", "report"),
        ("请求查处A1区茶楼暗藏赌博机室", "report"),  # 查处 outranks 请求
        ("咨询产假工资发放问题", "inquire"),
        ("关于公务员户籍限制的建议", "suggest"),
        ("请求解决K7县上江圩村居民住房困难一事", "request_help"),
        ("K8县丁字街的商户乱摆摊", "complain"),  # a problem stated: a complaint
        ("K2区杨村甸至普利桥公路路面扩宽是真的有进展了吗？", None),  # only asks: left out
    ],
)
def test_the_subject_s_words_decide_the_intent(subject: str, intent: str | None) -> None:
    assert board.Subject(subject).label == intent


def test_subject_is_the_text_before_the_first_full_stop() -> None:
    text = "投诉K市二中学校商店被垄断！。学校商店只卖一家的货。"
    assert board.subject_of(text) == "投诉K市二中学校商店被垄断"


def test_each_intent_is_capped_and_chosen_stably() -> None:
    subjects = [board.Subject(f"投诉第{i}号路口的路灯坏了") for i in range(30)]
    chosen = board.select(subjects, cap=5)
    assert list(chosen) == ["complain"] and len(chosen["complain"]) == 5
    assert board.select(reversed(subjects), cap=5) == chosen  # the order read does not matter


def test_the_training_blocks_are_skipped_by_the_entity_model_only() -> None:
    data = load_data(str(board.TRAINING_FILE))
    assert data.training_examples
    assert not any(is_annotated(m) for m in data.training_examples)
    assert {m.get("intent") for m in data.training_examples} <= {
        "complain", "report", "inquire", "suggest", "request_help"}
    hand_written = load_data(str(board.ROOT / "data" / "nlu" / "complain.yml"))
    assert all(is_annotated(m) for m in hand_written.training_examples)
    assert is_annotated(Message.build("投诉", "complain"))


@needs_shared
def test_the_training_file_is_what_the_generator_writes_and_holds_nothing_held_out() -> None:
    """Regenerate with `python -m nlu.board` after changing the rules or the cap."""
    held_out = board.held_out_keys()
    chosen = board.select(board.read_subjects(exclude=held_out))
    assert board.TRAINING_FILE.read_text(encoding="utf-8") == board.training_yaml(chosen)
    assert not {s.key for items in chosen.values() for s in items} & held_out
