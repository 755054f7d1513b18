"""nlu.text.normalize: one canonical spelling, and plain text left alone."""

from __future__ import annotations

import pytest

from nlu.text import normalize, normalize_with_offsets, remap_span


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("工单号是GD２０２６１１２７－００４２", "工单号是GD20261127-0042"),
        ("ＡＢＣ　１２３", "ABC 123"),
        ("請問戶籍遷移怎麼辦理", "请问户籍迁移怎么办理"),
        ("我住在幸福里小區3棟", "我住在幸福里小区3栋"),
        ("一三八一二三四五六七八", "13812345678"),
        ("电话幺三八一二三四五六七八", "电话13812345678"),
        ("電話一三八 一二三四 五六七八", "电话138 1234 5678"),
        ("工单编号是GD二零二六一一二七杠零零四二", "工单编号是GD20261127-0042"),
        ("身份证号一一零一零一一九九零零三零七四五一四", "身份证号110101199003074514"),
        ("  前后  空白\t\n太多  ", "前后 空白 太多"),
        ("零\u200b宽", "零宽"),
    ],
)
def test_normalizes(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "plain",
    [
        "我家楼下烧烤店油烟太大",
        "一五一十地说清楚",
        "三三两两的人",
        "十一点以后还在施工",
        "二十三号楼",
        "一一二七",
        "昨天晚上十点开始的",
        "打3分",
        "GD20261127-0042",
        "/complain",
        "",
        "…… ㎡ ①",
    ],
)
def test_plain_text_unchanged(plain: str) -> None:
    assert normalize(plain) == plain


@pytest.mark.parametrize(
    "raw",
    ["ＧＤ２０２６ 一三八一二三四五六七八", "請問　戶籍", "a  b\tc", "丰富多彩", "幸福里"],
)
def test_idempotent(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once


def test_offsets_follow_collapsed_whitespace() -> None:
    raw = "就在  幸福里小區　３棟  樓下"
    text, origin = normalize_with_offsets(raw)
    assert text == "就在 幸福里小区 3栋 楼下"
    assert len(origin) == len(text)
    start = raw.index("幸福里")
    end = raw.index("棟") + 1
    new_start, new_end = remap_span(origin, start, end)
    assert text[new_start:new_end] == "幸福里小区 3栋"


def test_span_of_only_whitespace_disappears() -> None:
    _, origin = normalize_with_offsets("a   b")
    assert remap_span(origin, 2, 3) is None
