"""Understanding "不对，地址是人民路8号" while the case form runs.

A citizen corrects an answer the way they would with a person: by naming what is
wrong and saying the new value, at the read-back or in the middle of the form.
The NLU sees such a message as ``inform`` and may cut the place short ("人民路8"),
and the form would store it as the answer to whatever it had just asked. This
module finds which answer is meant and the new value, from cue words that
operators edit in ``data/corrections.yml`` (no Chinese in code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.settings import ROOT

CORRECTIONS_FILE = Path(ROOT, "data", "corrections.yml")
#: how many characters may sit between the cue and the connector ("事情说错了，应该是…")
_GAP = 8
_PUNCTUATION = " \t,，.。!！?？:：;；、~～"


@dataclass(frozen=True)
class Correction:
    """Which slot the citizen corrects, and the new value (None: ask for it again)."""

    slot: str
    value: str | None


@dataclass(frozen=True)
class _Rules:
    leading: re.Pattern[str]
    connector: re.Pattern[str]
    wrong: tuple[str, ...]
    cues: tuple[tuple[str, str], ...]  # (cue, slot), longest cue first


def _alternation(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    data = yaml.safe_load(CORRECTIONS_FILE.read_text(encoding="utf-8")) or {}
    punctuation = re.escape(_PUNCTUATION)
    cues = [(cue, slot) for slot, words in data["slots"].items() for cue in words]
    return _Rules(
        leading=re.compile(rf"^(?:(?:{_alternation(data['markers'])})[{punctuation}]*)+"),
        connector=re.compile(
            rf"^.{{0,{_GAP}}}?(?:{_alternation(data['connectors'])})[{punctuation}]*(?P<value>.+)$",
            re.S,
        ),
        wrong=tuple(data.get("wrong") or ()),
        cues=tuple(sorted(cues, key=lambda pair: len(pair[0]), reverse=True)),
    )


def parse_correction(text: str) -> Correction | None:
    """The correction a message makes, if it starts by naming an answer of the form."""
    rules = _rules()
    stripped = text.strip().strip(_PUNCTUATION)
    rest = rules.leading.sub("", stripped)
    marked = rest != stripped
    for cue, slot in rules.cues:
        if not rest.startswith(cue):
            continue
        after = rest[len(cue) :]
        found = rules.connector.match(after)
        if found:
            value = found.group("value").strip(_PUNCTUATION)
            if value:
                return Correction(slot, value)
        if marked or any(word in after for word in rules.wrong):
            return Correction(slot, None)
        return None
    return None
