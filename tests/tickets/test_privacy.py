"""Masking helpers used by every listing and log line."""

from __future__ import annotations

from bot.privacy import is_valid_id_number, mask_id_number, mask_name, mask_phone, mask_text


def test_masks_match_the_documented_forms() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_id_number("110101199003071234") == "110101********1234"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_phone(None) == mask_id_number("") == mask_name(None) == ""


def test_free_text_loses_phone_and_id_numbers_but_keeps_ticket_numbers() -> None:
    text = "电话13812345678，座机010-87654321，身份证11010519491231002x，工单GD20261127-0042"
    masked = mask_text(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "87654321" not in masked
    assert "19491231" not in masked and "110105********002X" in masked
    assert "GD20261127-0042" in masked


def test_id_checksum_follows_gb11643() -> None:
    assert is_valid_id_number("11010519491231002X")
    assert is_valid_id_number("11010519491231002x")
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("1101051949123100")
