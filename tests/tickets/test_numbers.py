"""Ticket numbers as users type or say them."""

from __future__ import annotations

import pytest

from bot.tickets import normalize_ticket_number
from bot.tickets.numbers import format_number


@pytest.mark.parametrize(
    "typed",
    [
        "GD20261127-0042",
        "gd20261127-0042",
        "gd２０２６１１２７－００４２",
        "ＧＤ20261127 0042",
        "GD202611270042",
        " GD 2026 1127 - 0042 ",
        "20261127-0042",
        "工单号：GD20261127-0042",
        "二零二六一一二七零零四二",
    ],
)
def test_typed_numbers_normalize_to_the_canonical_form(typed: str) -> None:
    assert normalize_ticket_number(typed, "GD") == "GD20261127-0042"


@pytest.mark.parametrize("typed", ["", "hello", "GD2026-0042", "GD20261332-0042", "GD20261127-42"])
def test_non_numbers_are_refused(typed: str) -> None:
    assert normalize_ticket_number(typed, "GD") is None


def test_counter_is_zero_padded_and_grows_past_four_digits() -> None:
    assert format_number("GD", "20261127", 42) == "GD20261127-0042"
    assert format_number("GD", "20261127", 12345) == "GD20261127-12345"
    assert normalize_ticket_number("GD20261127-12345", "GD") == "GD20261127-12345"
