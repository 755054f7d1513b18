"""nlu.identifiers: exact phone, 身份证 and ticket numbers, and no false positives."""

from __future__ import annotations

import pytest

from nlu.identifiers import find_identifiers
from nlu.text import normalize


def _values(raw: str) -> list[tuple[str, str]]:
    text = normalize(raw)
    return [(item.entity, item.value) for item in find_identifiers(text, ticket_prefix="GD")]


def _id_with_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(first17, weights, strict=True))
    return first17 + "10X98765432"[total % 11]


VALID_ID = _id_with_check("11010119900307451")  # checksum computed, not copied
VALID_ID_X = _id_with_check("44030419851212003")


@pytest.mark.parametrize(
    "raw",
    [
        "帮我查一下GD20261127-0042",
        "gd20261127-42",
        "工单号是GD２０２６１１２７－００４２",
        "单号gd2026-1127-0042",
        "GD 20261127 0042 这个单子咋样了",
        "工单编号是GD二零二六一一二七杠零零四二",
        "工单号是202611270042",
        "20261127-0042",
        "ｇｄ２０２６１１２７－４２查一下",
        "工单GD20261127_0042",
    ],
)
def test_ticket_number_spellings(raw: str) -> None:
    assert _values(raw) == [("ticket_number", "GD20261127-0042")]


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("电话13812345678", "13812345678"),
        ("一三八一二三四五六七八", "13812345678"),
        ("手机 138 1234 5678 打这个", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("联系电话0731-12345678", "0731-12345678"),
        ("座机(010)62345678", "010-62345678"),
        ("座机01062345678", "010-62345678"),
        ("打021 61234567", "021-61234567"),
        ("手機１９９１２３４５６７８", "19912345678"),
    ],
)
def test_phones(raw: str, value: str) -> None:
    assert _values(raw) == [("phone", value)]


def test_valid_id_numbers() -> None:
    assert _values(f"身份证号{VALID_ID}") == [("id_number", VALID_ID)]
    assert VALID_ID_X.endswith("X") or VALID_ID_X[-1].isdigit()
    assert _values(f"身份证{VALID_ID_X.lower()}") == [("id_number", VALID_ID_X.upper())]


def test_x_check_digit() -> None:
    # find a 17-digit body whose check digit is X and accept it in lower case
    for seq in range(100, 200):
        candidate = _id_with_check(f"11010119900307{seq:03d}")
        if candidate.endswith("X"):
            assert _values(f"身份证{candidate.lower()}") == [("id_number", candidate)]
            return
    pytest.fail("no X check digit in range")


def test_invalid_id_checksum_not_extracted() -> None:
    wrong = VALID_ID[:-1] + ("0" if VALID_ID[-1] != "0" else "1")
    assert _values(f"身份证号{wrong}") == []


def test_id_with_impossible_birth_date_not_extracted() -> None:
    assert _values(f"号码{_id_with_check('11010119901332451')}") == []


@pytest.mark.parametrize(
    "raw",
    [
        "银行卡6222021234567890123",
        "卡号6222 0213 8123 4567",
        "日期2026-11-27",
        "订单号202611271234567",
        "138123456789012",
        "13812345678901",
        "GD20261399-0042",
        "我家在3栋2单元1201室",
        "2026年11月27日下午3点",
        "交了1380元",
        "快递单号 773123456789012",
        "20261127",
        "GD2026112742",
        "6222-1381-2345-678",
        "岭小学(2014年数据)18112525462.26杨梓塘",
        "金额3.13812345678万元",
    ],
)
def test_no_false_positives(raw: str) -> None:
    assert _values(raw) == []


def test_several_identifiers_in_one_message() -> None:
    raw = f"工单GD20261127-0042，电话13912345678，身份证{VALID_ID}"
    assert _values(raw) == [
        ("ticket_number", "GD20261127-0042"),
        ("phone", "13912345678"),
        ("id_number", VALID_ID),
    ]


def test_offsets_point_at_the_match() -> None:
    text = normalize("我的电话是 13812345678 谢谢")
    (item,) = find_identifiers(text, ticket_prefix="GD")
    assert text[item.start : item.end] == "13812345678"
