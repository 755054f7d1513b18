"""Normalize citizen text before anything reads it (Rasa-free).

Citizens type on phones in every input mode: full-width digits from a Chinese
IME (``ＧＤ２０２６``), traditional characters from Hong Kong/Taiwan keyboards or
copied text, phone and ticket numbers spoken into voice input (``一三八一二三…``),
stray tabs and double spaces. The NLU model, the deterministic extractors, the
hotline ingester and the FAQ search must all see one canonical spelling, so this
module is the one place that defines it. It has no Rasa import so the ingester
and the action server can use it cheaply.

:func:`normalize_with_offsets` also returns, for every output character, the index
of the input character it came from. The Rasa component uses it to move entity
annotations of training examples onto the normalized text; every step except
whitespace collapsing keeps the length, so offsets rarely move at all.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

__all__ = ["normalize", "normalize_with_offsets", "remap_span"]

#: Characters that are deleted outright: zero-width spaces/joiners, BOM, soft hyphen.
_INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad")

#: Spoken/IME digit characters in digit strings (幺 is how "1" is read out in phone numbers);
#: the one table of them (nlu.identifiers reads ticket numbers with it too).
SPOKEN_DIGITS = {
    "零": "0", "〇": "0", "○": "0",
    "一": "1", "幺": "1", "二": "2", "三": "3", "四": "4",
    "五": "5", "六": "6", "七": "7", "八": "8", "九": "9",
}
#: Words people say for the hyphen inside a spoken ticket number (GD二零…杠零零四二).
_CN_HYPHENS = frozenset("杠横")

#: A digit string: at least 7 digits (mixed Chinese/Arabic allowed), optionally separated
#: by hyphens, spaces or spoken hyphens. Seven keeps ordinary phrases such as
#: 一五一十、三三两两、一一二七 untouched while every phone/ticket/ID number is longer.
_DIGIT_CLASS = "0-9" + "".join(SPOKEN_DIGITS)
_DIGIT_RUN = re.compile(
    rf"[{_DIGIT_CLASS}](?:[{_DIGIT_CLASS}]|[\- 杠横](?=[{_DIGIT_CLASS}]))*"
)
_MIN_SPOKEN_DIGITS = 7


@lru_cache(maxsize=1)
def _t2s() -> Any:
    """The OpenCC converter, built once (loading its dictionaries takes ~10 ms)."""
    import opencc

    return opencc.OpenCC("t2s")


def _halfwidth(ch: str) -> str:
    """Full-width ASCII (U+FF01–U+FF5E) and the ideographic space to half-width.

    Only this block is folded (what NFKC does to it); NFKC on everything would also
    expand ``…`` or ``㎡`` into several characters and change lengths for no gain.
    """
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    if ch == "\u3000":
        return " "
    return ch


def _to_simplified(chars: list[str]) -> list[str]:
    """Traditional → simplified, keeping one output character per input character.

    OpenCC ``t2s`` converts phrases; in practice the result has the same length, and
    when it does not (rare phrase rules) we fall back to converting char by char so
    the offset map stays exact.
    """
    text = "".join(chars)
    if text.isascii():
        return chars
    converted = _t2s().convert(text)
    if len(converted) == len(text):
        return list(converted)
    out = []
    for ch in chars:
        single = _t2s().convert(ch)
        out.append(single if len(single) == 1 else ch)
    return out


def _spoken_digits(chars: list[str]) -> list[str]:
    """Rewrite Chinese digit strings (phones, ticket and ID numbers) into Arabic digits.

    Only runs with at least seven digits change, so 一个、十一点、三三两两 stay as they
    are; 十/百 are never digits of such strings, which keeps 二十三号 intact.
    """
    text = "".join(chars)
    if not any(ch in SPOKEN_DIGITS for ch in text):
        return chars
    out = list(chars)
    for match in _DIGIT_RUN.finditer(text):
        run = match.group()
        digits = sum(ch.isdigit() or ch in SPOKEN_DIGITS for ch in run)
        if digits < _MIN_SPOKEN_DIGITS or not any(ch in SPOKEN_DIGITS for ch in run):
            continue
        for i in range(match.start(), match.end()):
            ch = out[i]
            if ch in SPOKEN_DIGITS:
                out[i] = SPOKEN_DIGITS[ch]
            elif ch in _CN_HYPHENS:
                out[i] = "-"
    return out


def normalize_with_offsets(text: str) -> tuple[str, list[int]]:
    """Normalize ``text`` and map each output character to its input index.

    Steps, in order: drop invisible characters; full-width ASCII → half-width;
    traditional → simplified; spoken digit strings → digits; every whitespace run
    → one space, trimmed at both ends. Deterministic, idempotent.
    """
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        if ch in _INVISIBLE:
            continue
        chars.append(_halfwidth(ch))
        origin.append(index)

    chars = _to_simplified(chars)
    chars = _spoken_digits(chars)

    out_chars: list[str] = []
    out_origin: list[int] = []
    pending_space: int | None = None
    for ch, index in zip(chars, origin, strict=True):
        if ch.isspace() or unicodedata.category(ch) == "Zs":
            if pending_space is None:
                pending_space = index
            continue
        if pending_space is not None and out_chars:
            out_chars.append(" ")
            out_origin.append(pending_space)
        pending_space = None
        out_chars.append(ch)
        out_origin.append(index)
    return "".join(out_chars), out_origin


def normalize(text: str) -> str:
    """The canonical spelling of ``text`` every NLU consumer works on."""
    return normalize_with_offsets(text)[0]


def remap_span(origin: list[int], start: int, end: int) -> tuple[int, int] | None:
    """Move an input span ``[start, end)`` onto the normalized text.

    ``origin`` is the map returned by :func:`normalize_with_offsets`. Returns
    ``None`` when nothing of the span survives (it was only whitespace).
    """
    inside = [i for i, index in enumerate(origin) if start <= index < end]
    if not inside:
        return None
    return inside[0], inside[-1] + 1
