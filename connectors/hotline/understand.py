"""What a call was about: the act, the department category, the facts, a short summary.

Only the citizen's turns are parsed (the agent's words would outvote them: agents
ask "您是要投诉吗？" of every caller). Each turn gets the chat channels' NLU; the
call is then decided from all of them:

* **act**: a case intent (complain, report, request_help, suggest, emergency) with
  confidence ≥ :data:`MIN_CONFIDENCE` in any citizen turn makes the call a case of
  that kind; several vote by summed confidence, ties go to the more serious act.
  A turn the NLU only calls ``inform`` still votes, more weakly, when it says a
  cue word (投诉/举报/…, :data:`~connectors.hotline.vocabulary.ACT_CUES`). Without
  a case the call is an inquiry: a resolved contact, unless the agent promised a
  follow-up (转办, :data:`~connectors.hotline.vocabulary.REFERRAL_CUES`), then it
  is a ticket of kind ``inquiry``.
* **category**: the router's per-turn probabilities, averaged with the turns' lengths
  as weights over turns that carry content (not greetings or thanks).
* **summary**: extractive, ≤ :data:`SUMMARY_CHARS` characters: the first sentence of
  the turn that decided the act, then the sentences richest in keywords (TF-IDF on
  the tokens Rasa already made, jieba's IDF table), in the order they were said.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from connectors.hotline.formats import Call
from connectors.hotline.vocabulary import (
    ACT_CUES,
    FILLERS,
    OPENINGS,
    REFERRAL_CUES,
    SENTENCE_ENDS,
)

try:  # the one canonical spelling (another module; optional so this one stays usable alone)
    from nlu.text import normalize
except ImportError:  # pragma: no cover - the module is part of the project

    def normalize(text: str) -> str:
        return " ".join(text.split())


ACT_BY_INTENT = {
    "complain": "complaint",
    "report": "report",
    "request_help": "help",
    "suggest": "suggestion",
    "emergency": "emergency",
}
#: the more serious act wins a tie
CASE_PRIORITY = ("emergency", "complaint", "report", "help", "suggestion")
#: intents that carry no content for summary or category
FILLER_INTENTS = frozenset(
    {
        "greet",
        "goodbye",
        "thank",
        "affirm",
        "deny",
        "chitchat",
        "insult",
        "rate",
        "solved",
        "not_solved",
        "cancel",
    }
)
MIN_CONFIDENCE = 0.5
#: a cue word in a turn the NLU did not give a case intent counts this much
CUE_WEIGHT = 0.6
SUMMARY_CHARS = 120
DESCRIPTION_CHARS = 4000
#: DIET's cost grows with length; a turn is parsed in chunks of this size, at most
#: MAX_CHUNKS of them (the rest still yields phone/ID numbers by pattern)
PARSE_CHARS = 256
MAX_CHUNKS = 4
ENTITY_TYPES = ("place", "time", "service")

_SENTENCE = re.compile(f"[^{re.escape(SENTENCE_ENDS)}]+[{re.escape(SENTENCE_ENDS)}]*")
_PUNCT = re.compile(r"[\s\W_]+")
_OPENING = re.compile(
    "^(?:(?:" + "|".join(map(re.escape, OPENINGS)) + r")[\s,，.。!！、~]*)+"
)
#: a sentence carrying a phone or ID number is contact detail, not the request
_NUMBER = re.compile(r"\d{7,}")


@dataclass(frozen=True)
class Unit:
    """One text the NLU parses: a citizen turn, or a chunk of a long one."""

    turn: int
    text: str


@dataclass(frozen=True)
class Understanding:
    kind: str
    #: True: becomes a ticket; False: recorded as a resolved contact
    ticket: bool
    intent: str | None
    reason: str
    intents: tuple[str, ...]
    category: str | None
    category_confidence: float | None
    place: str | None
    occurred: str | None
    service: str | None
    phone: str | None
    id_number: str | None
    summary: str
    description: str


def citizen_texts(call: Call) -> list[tuple[int, str]]:
    """(turn index, normalized text) of the citizen's turns."""
    return [
        (i, normalize(t.text))
        for i, t in enumerate(call.turns)
        if t.speaker == "citizen" and t.text.strip()
    ]


def _chunks(text: str) -> list[str]:
    if len(text) <= PARSE_CHARS:
        return [text]
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE.findall(text):
        while len(sentence) > PARSE_CHARS:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(sentence[:PARSE_CHARS])
            sentence = sentence[PARSE_CHARS:]
        if len(current) + len(sentence) > PARSE_CHARS:
            chunks.append(current)
            current = ""
        current += sentence
    if current:
        chunks.append(current)
    return [c for c in chunks if c.strip()]


def units_of(texts: Sequence[tuple[int, str]]) -> tuple[list[Unit], list[str]]:
    """The texts to parse, and the text of long turns left unparsed (scanned for numbers)."""
    units: list[Unit] = []
    leftovers: list[str] = []
    for turn, text in texts:
        chunks = _chunks(text)
        units.extend(Unit(turn, chunk) for chunk in chunks[:MAX_CHUNKS])
        leftovers.extend(chunks[MAX_CHUNKS:])
    return units, leftovers


@lru_cache(maxsize=1)
def _idf() -> tuple[dict[str, float], float, frozenset[str]]:
    """jieba's IDF table (loaded once, ~0.3 s) and stop words."""
    import jieba.analyse

    tfidf = jieba.analyse.default_tfidf
    return tfidf.idf_freq, tfidf.median_idf, frozenset(tfidf.stop_words)


def _tokens(parse: dict[str, Any]) -> list[str]:
    text = parse.get("text") or ""
    spans = parse.get("text_tokens")
    if spans:
        return [text[s:e] for s, e in spans]
    import jieba

    return jieba.lcut(text)


def _keyword_weights(parses: Sequence[dict[str, Any]]) -> dict[str, float]:
    idf, median, stop = _idf()
    counts: Counter[str] = Counter()
    for parse in parses:
        for token in _tokens(parse):
            token = token.strip()
            if len(token) >= 2 and token.lower() not in stop and not token.isdigit():
                counts[token] += 1
    total = sum(counts.values()) or 1
    return {w: c * idf.get(w, median) / total for w, c in counts.items()}


def _intent(parse: dict[str, Any]) -> tuple[str | None, float]:
    intent = parse.get("intent") or {}
    return intent.get("name"), float(intent.get("confidence") or 0.0)


def _category(parse: dict[str, Any]) -> tuple[str | None, float]:
    value = parse.get("category")
    if isinstance(value, dict):
        return value.get("name"), float(value.get("confidence") or 0.0)
    return value, float(parse.get("category_confidence") or 0.0)


def _decide(
    units: Sequence[Unit], parses: Sequence[dict[str, Any]]
) -> tuple[str | None, str | None, str, int | None]:
    """(case kind or None, deciding intent, reason, index of the first deciding unit)."""
    votes: Counter[str] = Counter()
    first: dict[str, int] = {}
    intent_of: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for index, (unit, parse) in enumerate(zip(units, parses, strict=True)):
        name, confidence = _intent(parse)
        act = ACT_BY_INTENT.get(name or "")
        if act and confidence >= MIN_CONFIDENCE:
            votes[act] += confidence
            first.setdefault(act, index)
            intent_of.setdefault(act, name or "")
            reasons.setdefault(act, f"intent:{name}")
            continue
        if act is None and name != "inquire":
            for word, cue_act in ACT_CUES.items():
                if word in unit.text:
                    votes[cue_act] += CUE_WEIGHT
                    first.setdefault(cue_act, index)
                    reasons.setdefault(cue_act, f"cue:{word}")
                    break
    if not votes:
        return None, None, "", None
    kind = max(votes, key=lambda a: (round(votes[a], 6), -CASE_PRIORITY.index(a)))
    return kind, intent_of.get(kind), reasons[kind], first[kind]


def _sentences(units: Sequence[Unit], parses: Sequence[dict[str, Any]]) -> list[tuple[int, str]]:
    """(unit index, sentence) of content sentences, in the order they were said."""
    found = []
    for index, (unit, parse) in enumerate(zip(units, parses, strict=True)):
        name, _ = _intent(parse)
        if name in FILLER_INTENTS:
            continue
        for sentence in _SENTENCE.findall(unit.text):
            sentence = _OPENING.sub("", sentence.strip())
            core = _PUNCT.sub("", sentence)
            if len(core) < 4 or core in FILLERS or _NUMBER.search(sentence):
                continue
            found.append((index, sentence))
    return found


def _summary(
    units: Sequence[Unit], parses: Sequence[dict[str, Any]], lead_unit: int | None
) -> str:
    sentences = _sentences(units, parses)
    if not sentences:
        text = " ".join(u.text for u in units).strip()
        return _clip(text)
    weights = _keyword_weights(parses)

    def score(sentence: str) -> float:
        gained = sum(w for word, w in weights.items() if word in sentence)
        return gained / math.sqrt(len(sentence))

    ranked = sorted(range(len(sentences)), key=lambda i: -score(sentences[i][1]))
    lead = next((i for i, (u, _) in enumerate(sentences) if u == lead_unit), ranked[0])
    chosen = [lead]
    used = len(_ended(sentences[lead][1]))
    for i in ranked:
        if i == lead:
            continue
        length = len(_ended(sentences[i][1]))
        if used + length <= SUMMARY_CHARS:
            chosen.append(i)
            used += length
    return _clip("".join(_ended(sentences[i][1]) for i in sorted(chosen)))


def _ended(sentence: str) -> str:
    return sentence if sentence[-1] in SENTENCE_ENDS + "，,。" else sentence + "。"


def _clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = text.replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entities(
    parses: Sequence[dict[str, Any]], prefer: set[int]
) -> dict[str, str]:
    """First value of each entity type, from the deciding turns first, then any turn."""
    found: dict[str, str] = {}
    ordered = sorted(range(len(parses)), key=lambda i: (i not in prefer, i))
    for i in ordered:
        for entity in parses[i].get("entities") or ():
            name, value = entity.get("entity"), entity.get("value")
            if name and isinstance(value, str) and value.strip() and name not in found:
                found[name] = value.strip()
    return found


def _leftover_identifiers(leftovers: Sequence[str]) -> dict[str, str]:
    if not leftovers:
        return {}
    from nlu.identifiers import find_identifiers

    found: dict[str, str] = {}
    for text in leftovers:
        for item in find_identifiers(text):
            found.setdefault(item.entity, item.value)
    return found


def _aggregate_category(
    units: Sequence[Unit], parses: Sequence[dict[str, Any]]
) -> tuple[str | None, float | None]:
    scores: Counter[str] = Counter()
    total = 0.0
    for unit, parse in zip(units, parses, strict=True):
        name, _ = _intent(parse)
        category, confidence = _category(parse)
        if name in FILLER_INTENTS or not category:
            continue
        weight = float(min(len(unit.text), 200))
        scores[category] += weight * confidence
        total += weight
    if not scores or total <= 0:
        return None, None
    best = max(scores, key=lambda c: scores[c])
    return best, round(scores[best] / total, 4)


def understand(
    call: Call,
    units: Sequence[Unit],
    parses: Sequence[dict[str, Any]],
    leftovers: Sequence[str] = (),
) -> Understanding:
    """Decide what the call was about from the parses of its citizen turns."""
    kind, intent, reason, lead = _decide(units, parses)
    ticket = kind is not None
    if kind is None:
        kind, intent = "inquiry", None
        names = [_intent(p)[0] for p in parses]
        intent = next((n for n in names if n and n not in FILLER_INTENTS), None)
        reason = f"intent:{intent}" if intent else "no case intent"
        agent_words = "".join(t.text for t in call.turns if t.speaker == "agent")
        referral = next((cue for cue in REFERRAL_CUES if cue in agent_words), None)
        if referral:
            ticket, reason = True, f"referral:{referral}"
    prefer = (
        {i for i, p in enumerate(parses) if ACT_BY_INTENT.get(_intent(p)[0] or "") == kind}
        if ticket
        else set()
    )
    entities = _entities(parses, prefer)
    for name, value in _leftover_identifiers(leftovers).items():
        entities.setdefault(name, value)
    category, confidence = _aggregate_category(units, parses)
    texts = [normalize(t.text) for t in call.turns if t.speaker == "citizen" and t.text.strip()]
    description = "\n".join(texts)
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 1] + "…"
    return Understanding(
        kind=kind,
        ticket=ticket,
        intent=intent,
        reason=reason,
        intents=tuple(_intent(p)[0] or "" for p in parses),
        category=category,
        category_confidence=confidence,
        place=entities.get("place"),
        occurred=entities.get("time"),
        service=entities.get("service"),
        phone=entities.get("phone"),
        id_number=entities.get("id_number"),
        summary=_summary(units, parses, lead),
        description=description,
    )
