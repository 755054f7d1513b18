"""Deterministic extraction of phone, 身份证 and ticket numbers (Rasa-free).

These values must be exact: a phone number DIET guessed one digit short calls a
stranger back, a mistyped 身份证 number is personal data stored for nothing. So
they are found by patterns with validation (GB 11643 check digit for 身份证,
plausible date for ticket numbers), never learned, and the NLU training data does
not annotate them.

Input is expected to be normalized with :func:`nlu.text.normalize` first (the
Rasa pipeline does that; other callers should too): full-width digits and spoken
digit strings are then plain ASCII. Offsets refer to the text passed in.

A long digit run that is not one of these (bank card, order number, date, ticket
number) never yields a phone or ID number: every pattern refuses to start or end
next to another digit or inside a hyphenated number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

from nlu.text import SPOKEN_DIGITS

__all__ = [
    "Identifier",
    "find_identifiers",
    "first_phone",
    "is_valid_id_number",
    "ticket_number",
]

PHONE = "phone"
ID_NUMBER = "id_number"
TICKET_NUMBER = "ticket_number"

# Not glued to a digit, nor to a digit through a hyphen ("6222-1381…" is one number) or a
# decimal point ("18112525462.26" is an amount in a real message, not a phone).
_BEFORE = r"(?<![0-9A-Za-z])(?<![0-9][-.])"
_AFTER = r"(?![0-9])(?![-.][0-9])"

_SEP = r"[ \-_]?"
#: GD20261127-0042, gd20261127-42, GD 2026 1127 0042, gd2026-1127-0042, 20261127-0042
_TICKET = re.compile(
    rf"(?<![0-9A-Za-z])(?P<prefix>[A-Za-z]{{2,6}}{_SEP})?"
    rf"(?P<year>20\d\d){_SEP}(?P<month>[01]\d){_SEP}(?P<day>[0-3]\d)"
    rf"(?P<sep>[ \-_#]|号)?(?P<counter>\d{{1,6}})(?![0-9])"
)
#: Words that make a bare 12-digit run a ticket number ("工单号是202611270042").
_TICKET_CONTEXT = re.compile(r"(工单|单号|编号|工单号|受理号)[是为:：\s]*$")

#: GB 11643: weights of the first 17 digits and the check character of the sum mod 11
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
#: 两 is 2 in a number the citizen names as a ticket (二零二六一一二七零零四二, 两); in
#: free text the normaliser leaves it alone (三三两两)
_NUMBER_DIGITS = str.maketrans({**SPOKEN_DIGITS, "两": "2"})
#: the canonical form: prefix letters, the day, the day's counter
_NUMBER_RE = re.compile(r"([A-Z]{0,6})(\d{8})(\d{4,6})")

_ID = re.compile(rf"{_BEFORE}(\d{{6}}) ?(\d{{8}}) ?(\d{{3}}[0-9Xx]){_AFTER}")
_MOBILE = re.compile(
    rf"{_BEFORE}(?:\+?86[ \-]?)?(1[3-9]\d)[ \-]?(\d{{4}})[ \-]?(\d{{4}}){_AFTER}"
)


@dataclass(frozen=True)
class Identifier:
    """One exact value found in a text.

    ``value`` is canonical (digits only for phones except the landline's area-code
    hyphen, upper-case X for 身份证, ``GD20261127-0042`` for tickets); ``start``/``end``
    delimit what was matched in the input.
    """

    entity: str
    value: str
    start: int
    end: int


def is_valid_id_number(value: str) -> bool:
    """GB 11643 check digit of an 18-character resident ID number."""
    text = unicodedata.normalize("NFKC", value).strip().upper()
    if not re.fullmatch(r"\d{17}[\dX]", text):
        return False
    total = sum(int(digit) * weight for digit, weight in zip(text[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == text[17]


def ticket_number(text: str | None, prefix: str = "") -> str | None:
    """What a citizen typed or said as a ticket number, canonical (``GD20261127-0042``), or None.

    Accepts lower case, full-width letters and digits, spaces, missing or odd
    dashes and spoken digits (``gd２０２６1127 0042``, ``二零二六一一二七零零四二``).
    A missing prefix is filled with ``prefix`` (the operator's, which the
    layers above know; this module reads no settings).
    """
    if not text:
        return None
    value = unicodedata.normalize("NFKC", text).translate(_NUMBER_DIGITS).upper()
    value = re.sub(r"[\s\-_–—.·/#:]+", "", value)
    value = value.removeprefix("NO").removeprefix("工单号").removeprefix("工单")
    match = _NUMBER_RE.fullmatch(value)
    if not match:
        return None
    letters, day, counter = match.groups()
    try:
        datetime.strptime(day, "%Y%m%d")
    except ValueError:
        return None
    return f"{letters or prefix.upper()}{day}-{counter}"


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in taken)


def _tickets(text: str, prefix: str | None) -> list[Identifier]:
    found = []
    for match in _TICKET.finditer(text):
        letters = (match["prefix"] or "").strip(" -_")
        counter = match["counter"]
        if not letters:
            # A bare date+counter is a ticket only with a separator or a keyword before it,
            # otherwise dates and order numbers would become tickets.
            context = _TICKET_CONTEXT.search(text[: match.start()])
            if not (match["sep"] == "-" and len(counter) == 4) and not context:
                continue
        elif not match["sep"] and len(counter) < 4:
            continue  # GD2026112742: too short to tell date from counter
        if len(counter) < 4:
            counter = counter.zfill(4)
        raw = f"{letters}{match['year']}{match['month']}{match['day']}-{counter}"
        value = ticket_number(raw, prefix or "")
        if value is None:
            continue
        found.append(Identifier(TICKET_NUMBER, value, match.start(), match.end()))
    return found


def _plausible_birth(digits: str) -> bool:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100


def _id_numbers(text: str) -> list[Identifier]:
    found = []
    for match in _ID.finditer(text):
        value = "".join(match.groups()).upper()
        if _plausible_birth(match[2]) and is_valid_id_number(value):
            found.append(Identifier(ID_NUMBER, value, match.start(), match.end()))
    return found


_LANDLINE_SPLIT = re.compile(
    rf"{_BEFORE}(?:\((?P<a1>0[1-9]\d{{1,2}})\)|(?P<a2>0[1-9]\d{{1,2}})[ \-])"
    rf"(?P<local>[1-9]\d{{6,7}}){_AFTER}"
)
_LANDLINE_BARE = re.compile(rf"{_BEFORE}(?P<all>0[1-9]\d{{9,10}}){_AFTER}")


def _landline_value(area: str, local: str) -> str:
    return f"{area}-{local}"


def _phones(text: str) -> list[Identifier]:
    found = []
    for match in _MOBILE.finditer(text):
        found.append(Identifier(PHONE, "".join(match.groups()), match.start(), match.end()))
    for match in _LANDLINE_SPLIT.finditer(text):
        area = match["a1"] or match["a2"]
        found.append(
            Identifier(PHONE, _landline_value(area, match["local"]), match.start(), match.end())
        )
    for match in _LANDLINE_BARE.finditer(text):
        digits = match["all"]
        # 010 and 02x are the three-digit area codes; all others have four digits.
        cut = 3 if digits.startswith(("010", "02")) else 4
        local = digits[cut:]
        if len(local) in (7, 8) and local[0] != "0":
            found.append(
                Identifier(PHONE, _landline_value(digits[:cut], local), match.start(), match.end())
            )
    return found


def find_identifiers(text: str, ticket_prefix: str | None = None) -> list[Identifier]:
    """Every phone, 身份证 and ticket number in ``text``, ordered by position.

    Tickets are matched first, then 身份证 numbers, then phones; a later match that
    overlaps an earlier one is dropped, so one digit run yields at most one value.
    ``ticket_prefix`` fills a missing prefix (None: the number stays without one; the
    ticket store reads it with the operator's prefix).
    """
    taken: list[tuple[int, int]] = []
    result: list[Identifier] = []
    for candidate in (*_tickets(text, ticket_prefix), *_id_numbers(text), *_phones(text)):
        span = (candidate.start, candidate.end)
        if _overlaps(span, taken):
            continue
        taken.append(span)
        result.append(candidate)
    return sorted(result, key=lambda item: item.start)


def first_phone(text: str) -> str | None:
    """The first phone number in what a citizen typed or said (normalised first), or None.

    For a slot that expects a phone ("方便留个手机号吗"): the same patterns as
    the NLU's, so a number the model found is the number the slot keeps.
    """
    from nlu.text import normalize

    return next(
        (item.value for item in find_identifiers(normalize(text)) if item.entity == PHONE), None
    )
