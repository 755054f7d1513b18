"""Masking of personal data (phone, 身份证, name) wherever text leaves the store.

PIPL treats phone and 身份证 numbers as personal (身份证: sensitive) data, so
every listing, log line and export passes through these helpers. They live
outside ``bot.tickets`` because loggers and the NLU use them too.
"""

from __future__ import annotations

import re

__all__ = [
    "is_valid_id_number",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "mask_text",
]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# Not preceded/followed by another digit, so order numbers and ticket numbers
# (GD20261127-0042) keep their digits.
_ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE_RE = re.compile(r"(?<![0-9])(\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![0-9])")
_LANDLINE_RE = re.compile(r"(?<![0-9])(0\d{2,3})[- ]?(\d{3,4})(\d{4})(?![0-9])")


def is_valid_id_number(value: str) -> bool:
    """GB 11643 check digit of an 18-character resident ID number."""
    text = value.strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", text):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(text[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == text[17]


def mask_phone(value: str | None) -> str:
    """``13812345678`` -> ``138****5678``; short or odd input keeps only its last 2 chars."""
    if not value:
        return ""
    digits = re.sub(r"\D", "", value)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) >= 7:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 2, 0) + digits[-2:]


def mask_id_number(value: str | None) -> str:
    """``110101199003071234`` -> ``110101********1234`` (region kept, birth date hidden)."""
    if not value:
        return ""
    text = value.strip().upper()
    if len(text) <= 10:
        return "*" * len(text)
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_name(value: str | None) -> str:
    """``张三`` -> ``张*``, ``欧阳娜娜`` -> ``欧***``: the family name alone stays readable."""
    if not value:
        return ""
    text = value.strip()
    return text[:1] + "*" * max(len(text) - 1, 1)


def _mask_mobile(match: re.Match[str]) -> str:
    return f"{match.group(2)}****{match.group(4)}"


def _mask_landline(match: re.Match[str]) -> str:
    return f"{match.group(1)}-****{match.group(3)}"


def mask_text(text: str | None) -> str:
    """Mask every phone and 18-digit ID number inside free text.

    ID numbers are masked whether or not their check digit is right: a typo
    in someone's 身份证 number is still mostly their number.
    """
    if not text:
        return ""
    text = _ID_RE.sub(lambda m: f"{m.group(1)}********{m.group(3)[-4:].upper()}", text)
    text = _MOBILE_RE.sub(_mask_mobile, text)
    return _LANDLINE_RE.sub(_mask_landline, text)
