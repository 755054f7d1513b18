"""Probable duplicates: the same complaint filed twice, or by two neighbours.

Character-bigram cosine works on Chinese without a tokenizer (and without
jieba's second-long dictionary load in every process); phone and ID numbers
are masked first so that two complaints by the same caller do not look alike
just because of the number.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

from bot.privacy import mask_text

_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
_PLACE_NOISE = re.compile(r"[\s\W_]+|附近|旁边|门口|对面", re.UNICODE)


def _clean(text: str) -> str:
    return _DROP.sub("", unicodedata.normalize("NFKC", mask_text(text)).lower())


def bigrams(text: str) -> Counter[str]:
    clean = _clean(text)
    if len(clean) < 2:
        return Counter([clean]) if clean else Counter()
    return Counter(clean[i : i + 2] for i in range(len(clean) - 1))


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(count * b[gram] for gram, count in a.items())
    norm = math.sqrt(sum(c * c for c in a.values())) * math.sqrt(sum(c * c for c in b.values()))
    return dot / norm if norm else 0.0


def similarity(a: str, b: str) -> float:
    return cosine(bigrams(a), bigrams(b))


def normalize_place(place: str | None) -> str:
    if not place:
        return ""
    return _PLACE_NOISE.sub("", unicodedata.normalize("NFKC", place).lower())


def same_place(a: str | None, b: str | None) -> bool | None:
    """True/False when both places are known, None when either is missing."""
    left, right = normalize_place(a), normalize_place(b)
    if not left or not right:
        return None
    return left in right or right in left


def duplicate_score(
    text: str,
    place: str | None,
    other_text: str,
    other_place: str | None,
    *,
    threshold: float,
    strict_threshold: float,
) -> float | None:
    """The similarity when the pair counts as a probable duplicate, else None.

    With both places known they must match; without a place the texts must be
    nearly the same (``strict_threshold``).
    """
    where = same_place(place, other_place)
    if where is False:
        return None
    if where:
        # the shared place says nothing more about the complaint itself
        for name in {place or "", other_place or ""}:
            if name:
                text, other_text = text.replace(name, " "), other_text.replace(name, " ")
    score = similarity(text, other_text)
    needed = threshold if where else strict_threshold
    return score if score >= needed else None
