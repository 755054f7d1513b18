"""Rendering bot messages for WeChat: size limit, sentence ends, numbered choices."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from connectors.wechat.render import (
    TEXT_LIMIT_BYTES,
    choice_number,
    pack,
    render_messages,
    safe_cdata,
    split_text,
)

sentences = st.lists(
    st.tuples(st.text(alphabet="路灯坏了噪音扰民井盖丢失abc123 ", min_size=0, max_size=400),
              st.sampled_from(["。", "！", "？", "\n", "；", ""])),
    max_size=30,
).map(lambda parts: "".join(text + end for text, end in parts))


def _squeeze(text: str) -> str:
    return re.sub(r"\s", "", text)


@given(sentences)
def test_split_keeps_every_character_within_the_limit(text: str) -> None:
    chunks = split_text(text, limit=300)
    assert all(0 < len(c.encode()) <= 300 for c in chunks)
    assert _squeeze("".join(chunks)) == _squeeze(text)


def test_split_prefers_sentence_ends() -> None:
    sentence = "市民可携带身份证到社保中心办理补卡手续。"
    chunks = split_text(sentence * 200)
    assert len(chunks) > 1
    assert all(c.endswith("。") for c in chunks)
    assert all(len(c.encode()) <= TEXT_LIMIT_BYTES for c in chunks)


def test_pack_joins_short_messages_and_never_exceeds_the_limit() -> None:
    assert pack(["第一条。", "第二条。"]) == ["第一条。\n\n第二条。"]
    # 2100 bytes without a sentence end: hard-cut at 682 characters (2046 bytes)
    assert pack(["长" * 700, "短"]) == ["长" * 682, "长" * 18 + "\n\n短"]


def test_buttons_are_numbered_across_the_turn() -> None:
    turn = render_messages([
        {"text": "请选择", "buttons": [{"title": "咨询", "payload": "/inquire"},
                                     {"title": "投诉", "payload": "/complain"}]},
        {"text": "或者", "buttons": [{"title": "转人工", "payload": "/request_human"}]},
        {"text": "谢谢"},
    ], hint="（回复数字）")
    assert turn.texts == ["请选择\n1. 咨询\n2. 投诉\n\n或者\n3. 转人工\n（回复数字）\n\n谢谢"]
    assert turn.payloads == ["/inquire", "/complain", "/request_human"]


def test_custom_and_images_become_text_and_cdata_stays_closed() -> None:
    turn = render_messages([{"custom": {"text": "自定义"}}, {"image": "http://x/1.png"},
                            {"custom": {"blocks": []}}, {"text": "a]]>b"}])
    assert turn.texts == ["自定义\n\nhttp://x/1.png\n\na]] >b"]
    assert "]]>" not in safe_cdata("]]>]]>")


def test_choice_numbers() -> None:
    assert [choice_number(t) for t in ["1", " 2 ", "３", "2.", "3、", "12", "1a", "", "一"]] == [
        1, 2, 3, 2, 3, 12, None, None, None]
