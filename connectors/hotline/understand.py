"""What a call was about: ticket or resolved contact, its kind, category, facts, summary.

A call is decided from all of the citizen's turns together with what the agent
did, never from one turn's top intent (docs/transcripts.md, "How a call is
classified"):

1. **Danger to life** makes an ``emergency`` ticket, whatever else was said: a
   turn the rules of ``data/emergency.yml`` recognise (:mod:`nlu.emergency`; the
   pipeline's ``EmergencyDetector`` puts the same finding in the parse), a turn
   the model calls ``emergency`` with probability ≥ :data:`EMERGENCY_MIN`, or an
   agent who transfers the call to 110/119/120 or tells the caller to ring one
   now. A citizen who only asks for a number ("燃气泄漏打什么电话") asks a question.
2. **A grievance** (a turn whose probability of complain + report + request_help +
   suggest + emergency is ≥ :data:`CASE_MIN`, or that names the act: 投诉、举报 …)
   makes a ticket of the act with the most probability over those turns. A
   question (its last sentence asked, or an inquiry intent) is no grievance: long
   spoken questions read like complaints to a model trained on short messages, and
   the agent, who heard the tone, answers a question and promises to pass on a
   grievance (unless the agent answered it by sending the caller elsewhere to
   complain, 您可以打12319反映). Nor is what the caller said to explain the
   question just before it (unless the model is sure it is a grievance,
   ≥ :data:`STRONG_CASE`), nor the caller's reaction to an answer (明白了、那就好、
   那行 …, no new matter).
3. **A promise to follow up** by the agent (转交、登记、派单、回复您 …) makes a ticket:
   of the act the citizen's turns lean to, ``inquiry`` (转办咨询) for questions.
4. **Anything left unanswered** (a question or a statement with no agent answer
   after it) makes a ticket: a dropped complaint is worse than an extra ticket.
5. Otherwise every question was answered on the call (or the caller said nothing
   but greetings): a **resolved contact**.

The model is a calibrated linear classifier, so its probabilities are read as
such: summed over the case intents, compared with fixed thresholds. The agent's
turns are read by cues (:mod:`connectors.hotline.agent`), not parsed.

Also: **category** (the router's per-turn probabilities, averaged with the turns'
lengths as weights over turns that carry content) and **summary** (extractive,
≤ :data:`SUMMARY_CHARS` characters: the first sentence of the turn that decided the
call, then the sentences richest in keywords by TF-IDF on the tokens Rasa made).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bot.tickets.models import KIND_BY_INTENT
from connectors.hotline.agent import AgentTurn, is_question, read_agent_turn
from connectors.hotline.formats import Call
from connectors.hotline.vocabulary import (
    ACK_CUES,
    ACT_CUES,
    ASK_CUES,
    FILLERS,
    NEW_MATTER_CUES,
    OPENINGS,
    SENTENCE_ENDS,
)
from nlu.emergency import recognise
from nlu.text import normalize_with_offsets

#: the case act each intent names: the ticket kinds of bot.tickets.models, and danger
ACT_BY_INTENT = {**KIND_BY_INTENT, "emergency": "emergency"}
#: the more serious act wins a tie
CASE_PRIORITY = ("emergency", "complaint", "report", "help", "suggestion")
#: questions: answered on the call, they need no ticket
ASK_INTENTS = frozenset({"inquire", "check_status"})
#: intents that carry no request: no summary sentence, no category, nothing to answer
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
#: the model's "not sure" label (FallbackClassifier): its ranking is read instead
FALLBACK_INTENT = "nlu_fallback"
#: a turn whose case probability reaches this is a grievance (more likely than not)
CASE_MIN = 0.5
#: … and still is one when it leads up to a question, if the model is this sure
STRONG_CASE = 0.9
#: a turn nobody answered leans to a case from this case probability on
DOUBT_CASE = 0.3
#: the model's own emergency reading counts from this probability on
EMERGENCY_MIN = 0.5
#: a filler intent this sure is a filler even when asked as a question ("听得到吗？")
SURE_FILLER = 0.9
#: a cue word (投诉、举报 …) in a turn counts as this much probability of its act
CUE_WEIGHT = 0.6
#: the act the agent names when summing up (您举报的情况) counts this much, for the kind only
AGENT_CUE_WEIGHT = 0.3
SUMMARY_CHARS = 120
DESCRIPTION_CHARS = 4000
#: the NLU's cost grows with length; a turn is parsed in chunks of this size, at most
#: MAX_CHUNKS of them (the rest still yields phone/ID numbers and dangers by pattern)
PARSE_CHARS = 256
MAX_CHUNKS = 4
ENTITY_TYPES = ("place", "time", "service")

_SENTENCE = re.compile(f"[^{re.escape(SENTENCE_ENDS)}]+[{re.escape(SENTENCE_ENDS)}]*")
_PUNCT = re.compile(r"[\s\W_]+")
_OPENING = re.compile("^(?:(?:" + "|".join(map(re.escape, OPENINGS)) + r")[\s,，.。!！?？、~]*)+")
#: a sentence carrying a phone or ID number is contact detail, not the request
_NUMBER = re.compile(r"\d{7,}")


@dataclass(frozen=True)
class Unit:
    """One text the NLU parses: a citizen turn (its phone opening taken off), or a chunk."""

    turn: int
    text: str
    #: where ``text`` starts in the turn's normalized text (to quote the turn as written)
    start: int = 0


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
    #: the danger recognised by words ({"response", "keyword", "question"}), if any
    danger: dict[str, Any] | None = None
    #: every turn as written (:func:`as_written`), for the stored transcript
    written: tuple[str, ...] = ()


@dataclass(frozen=True)
class TurnText:
    """One turn read once: as written for the record, normalized for the model."""

    #: as the call system wrote it, numbers said in words as digits (:func:`as_written`)
    written: str
    normalized: str
    #: index in ``written`` of each character of ``normalized``
    origin: tuple[int, ...]


def read_turn(text: str) -> TurnText:
    """Normalize a turn once, and keep the text as written beside it (same length)."""
    normalized, origin = normalize_with_offsets(text)
    chars: list[str] | None = None
    for ch, index in zip(normalized, origin, strict=True):
        if "0" <= ch <= "9" and text[index] != ch:
            chars = chars or list(text)
            chars[index] = ch
    written = "".join(chars) if chars is not None else text
    return TurnText(written, normalized, tuple(origin))


def read_turns(call: Call) -> list[TurnText]:
    """Every turn of the call, read once (the ingester does it when it batches the call)."""
    return [read_turn(t.text) for t in call.turns]


def citizen_texts(call: Call, turns: Sequence[TurnText] | None = None) -> list[tuple[int, str]]:
    """(turn index, normalized text) of the citizen's turns."""
    if turns is None:
        turns = read_turns(call)
    return [
        (i, turns[i].normalized)
        for i, t in enumerate(call.turns)
        if t.speaker == "citizen" and t.text.strip()
    ]


def strip_opening(text: str) -> str:
    """The turn without its phone opening (喂，你好，…); the turn itself if that is all."""
    rest = _OPENING.sub("", text)
    return rest if len(_PUNCT.sub("", rest)) >= 2 else text


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
    """The texts to parse, and the text of long turns left unparsed (scanned by pattern)."""
    units: list[Unit] = []
    leftovers: list[str] = []
    for turn, text in texts:
        stripped = strip_opening(text)
        chunks = _chunks(stripped)
        position = len(text) - len(stripped)
        for chunk in chunks[:MAX_CHUNKS]:
            position = text.find(chunk, position)
            units.append(Unit(turn, chunk, max(position, 0)))
            position += len(chunk)
        leftovers.extend(chunks[MAX_CHUNKS:])
    return units, leftovers


def as_written(text: str) -> str:
    """The turn as the call system wrote it, for the record (punctuation, traditional
    characters and all), except that numbers said in words become digits: the store's
    masking must find every phone and 身份证 number (一三八… is a phone number too)."""
    return read_turn(text).written


def _quoter(units: Sequence[Unit], turns: Sequence[TurnText]) -> Callable[[int, str], str]:
    """Quotes a sentence of a unit from its turn as written (the summary is a record)."""

    def quote(index: int, sentence: str) -> str:
        unit = units[index]
        offset = unit.text.find(sentence)
        if offset < 0 or not 0 <= unit.turn < len(turns):
            return sentence
        turn = turns[unit.turn]
        start, end = unit.start + offset, unit.start + offset + len(sentence)
        if end > len(turn.origin) or start >= end:
            return sentence
        return turn.written[turn.origin[start] : turn.origin[end - 1] + 1]

    return quote


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


# -- reading one citizen turn --------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """One parsed unit, read for the decision."""

    index: int
    turn: int
    #: the model's top intent (under a fallback: the first of its ranking)
    top: str | None
    top_confidence: float
    #: probability of each case act (complaint, report, help, suggestion, emergency)
    acts: dict[str, float]
    #: the danger the emergency rules recognise in it, if any
    danger: dict[str, Any] | None
    #: the act its words name plainly (投诉 → complaint), and the word
    cue: tuple[str, str] | None
    #: asked as a question (its last sentence), or a question intent
    question: bool
    #: a question announced as one (请问、我想问下 …)
    announced: bool = False

    @property
    def case(self) -> float:
        return sum(self.acts.values())

    @property
    def asks_only(self) -> bool:
        """Asks for an emergency number or prevention, nothing is happening."""
        return bool(self.danger and self.danger.get("question"))


def _ranking(parse: dict[str, Any]) -> list[tuple[str, float]]:
    """The classifier's ranking without the fallback label (its reading under the doubt)."""
    ranking = [
        (str(entry.get("name")), float(entry.get("confidence") or 0.0))
        for entry in parse.get("intent_ranking") or ()
        if entry.get("name") and entry.get("name") != FALLBACK_INTENT
    ]
    if not ranking:
        name, confidence = _intent(parse)
        if name and name != FALLBACK_INTENT:
            ranking = [(name, confidence)]
    return ranking


def _danger(unit: Unit, parse: dict[str, Any]) -> dict[str, Any] | None:
    """The NLU's ``emergency`` finding, else the rules on the text (a model without the
    EmergencyDetector, or one trained before a keyword was added)."""
    found = parse.get("emergency")
    if isinstance(found, dict) and found.get("response"):
        return found
    danger = recognise(unit.text)
    return danger.as_dict() if danger is not None else None


def read_unit(index: int, unit: Unit, parse: dict[str, Any]) -> Reading:
    danger = _danger(unit, parse)
    ranking = _ranking(parse)
    if danger and danger.get("question"):
        # the detector put "emergency" on top of a question for the number: the
        # model's own reading is the rest of the ranking
        ranking = [(name, p) for name, p in ranking if name != "emergency"]
    top, top_confidence = ranking[0] if ranking else (None, 0.0)
    acts: dict[str, float] = {}
    for name, p in ranking:
        act = ACT_BY_INTENT.get(name)
        if act:
            acts[act] = acts.get(act, 0.0) + p
    sentences = [s for s in _SENTENCE.findall(unit.text) if _PUNCT.sub("", s)]
    question = top in ASK_INTENTS or bool(sentences and is_question(sentences[-1]))
    cue = None
    if top not in ASK_INTENTS and not question:
        cue = next(((act, word) for word, act in ACT_CUES.items() if word in unit.text), None)
    announced = question and any(word in unit.text for word in ASK_CUES)
    return Reading(index, unit.turn, top, top_confidence, acts, danger, cue, question, announced)


def _role(reading: Reading, text: str, after_answer: bool) -> str:
    """emergency | filler | reaction | question | grievance | content (preamble: later)."""
    if reading.danger and not reading.asks_only:
        return "emergency"
    if not reading.asks_only and reading.acts.get("emergency", 0.0) >= EMERGENCY_MIN:
        return "emergency"
    if reading.asks_only:
        return "question"
    filler = reading.top in FILLER_INTENTS and reading.case < DOUBT_CASE
    if filler and (
        reading.top_confidence >= SURE_FILLER
        or (reading.top_confidence >= CASE_MIN and not reading.question)
    ):
        return "filler"
    if (
        after_answer
        and reading.cue is None
        and not reading.question
        and not any(cue in text for cue in NEW_MATTER_CUES)
        and (reading.case < DOUBT_CASE or any(cue in text for cue in ACK_CUES))
    ):
        # after an answer a new matter comes as a question or a grievance; the rest
        # is the caller's reaction ("那行，我再等等" / "原来不用证明啊，那太好了")
        return "reaction"
    if reading.question:
        return "question"
    if reading.case >= CASE_MIN or reading.cue is not None:
        return "grievance"
    if reading.top in FILLER_INTENTS and reading.case < DOUBT_CASE:
        return "filler"
    return "content"


def _redirected(readings: Sequence[Reading], roles: list[str], agent: Sequence[AgentTurn]) -> None:
    """A question the model reads as a case (not announced as a question, not an
    inquiry intent), that the agent answered by sending the caller elsewhere to
    complain (您可以打12319反映), was a grievance: "烧烤摊吵到半夜，这归谁管啊？"."""
    for i, reading in enumerate(readings):
        if (
            roles[i] != "question"
            or reading.announced
            or reading.top in ASK_INTENTS
            or reading.asks_only
            or reading.case < CASE_MIN
        ):
            continue
        answer = next((a for a in agent if a.turn > reading.turn and a.answers), None)
        if answer is not None and answer.redirects:
            roles[i] = "grievance"


def _preambles(readings: Sequence[Reading], roles: list[str], answer_turns: Sequence[int]) -> None:
    """Callers explain, then ask: what they said before a question they announced as
    one (我想问问…) or the model reads as an inquiry, with no answer in between, belongs
    to the question, unless the model is sure it is a grievance."""
    for q, reading in enumerate(readings):
        if roles[q] != "question" or not (reading.announced or reading.top in ASK_INTENTS):
            continue
        for i in range(q - 1, -1, -1):
            before = readings[i]
            if any(before.turn < t < reading.turn for t in answer_turns):
                break
            if roles[i] == "content" or (
                roles[i] == "grievance" and before.cue is None and before.case < STRONG_CASE
            ):
                roles[i] = "preamble"


@dataclass(frozen=True)
class Decision:
    kind: str
    ticket: bool
    intent: str | None
    reason: str
    #: index of the unit that decided the call (the summary starts with it)
    lead: int | None
    danger: dict[str, Any] | None = None
    #: units left out of the summary (reactions; for a case, the questions answered)
    skip: frozenset[int] = frozenset()


def _vote(readings: Sequence[Reading], agent_acts: Sequence[str]) -> tuple[str, Reading | None]:
    """The case act with the most probability over ``readings`` (cue words count too;
    the agent's naming of the act breaks near ties), and the reading that leads it."""
    votes: dict[str, float] = defaultdict(float)
    for reading in readings:
        for act, p in reading.acts.items():
            if act != "emergency":
                votes[act] += p
        if reading.cue is not None:
            votes[reading.cue[0]] += CUE_WEIGHT
    for act in agent_acts:
        votes[act] += AGENT_CUE_WEIGHT
    if not votes:
        return "complaint", readings[0] if readings else None
    kind = max(votes, key=lambda a: (round(votes[a], 6), -CASE_PRIORITY.index(a)))
    lead = next(
        (r for r in readings if r.cue and r.cue[0] == kind),
        max(readings, key=lambda r: r.acts.get(kind, 0.0)) if readings else None,
    )
    return kind, lead


def decide(
    call: Call,
    units: Sequence[Unit],
    parses: Sequence[dict[str, Any]],
    leftovers: Sequence[str] = (),
    turns: Sequence[TurnText] | None = None,
) -> Decision:
    """Ticket or resolved contact, and of what kind (the numbered rules of the module doc)."""
    if turns is None:
        turns = read_turns(call)
    agent = [
        read_agent_turn(i, turns[i].normalized)
        for i, t in enumerate(call.turns)
        if t.speaker == "agent" and t.text.strip()
    ]
    answer_turns = [a.turn for a in agent if a.answers]

    def answered_after(turn: int) -> bool:
        return any(t > turn for t in answer_turns)

    def answered_before(turn: int) -> bool:
        return any(t < turn for t in answer_turns)

    readings = [read_unit(i, u, p) for i, (u, p) in enumerate(zip(units, parses, strict=True))]
    roles = [
        _role(r, u.text, answered_before(u.turn)) for r, u in zip(readings, units, strict=True)
    ]
    _redirected(readings, roles, agent)
    _preambles(readings, roles, answer_turns)
    of = {
        role: [r for r, x in zip(readings, roles, strict=True) if x == role] for role in set(roles)
    }
    reactions = {r.index for r, x in zip(readings, roles, strict=True) if x == "reaction"}
    settled = reactions | {
        r.index
        for r, x in zip(readings, roles, strict=True)
        if x in ("question", "preamble") and answered_after(r.turn)
    }
    first_content = min(
        (u.turn for u, x in zip(units, roles, strict=True) if x != "filler"), default=None
    )
    # the agent's words count once the caller has said something (not the greeting)
    acting: list[AgentTurn] = [
        a for a in agent if first_content is not None and a.turn > first_content
    ]
    agent_acts = [act for a in acting for act in a.acts]

    # 1. danger to life
    if of.get("emergency"):
        danger_turn = of["emergency"][0]
        if danger_turn.danger:
            reason = f"emergency:keyword:{danger_turn.danger.get('keyword')}"
        else:
            reason = f"emergency:intent:{danger_turn.acts.get('emergency', 0.0):.2f}"
        return Decision(
            "emergency", True, "emergency", reason, danger_turn.index, danger_turn.danger,
            frozenset(settled),
        )
    for text in leftovers:
        found = recognise(text)
        if found is not None and not found.question:
            return Decision(
                "emergency",
                True,
                "emergency",
                f"emergency:keyword:{found.keyword}",
                None,
                found.as_dict(),
                frozenset(settled),
            )
    transfer = next((a for a in acting if a.emergency), None)
    if transfer is not None:
        return Decision(
            "emergency",
            True,
            "emergency",
            f"emergency:agent:{transfer.emergency}",
            _first(readings, roles),
            None,
            frozenset(settled),
        )

    # 2. a grievance
    grievances = of.get("grievance", [])
    if grievances:
        kind, lead = _vote(grievances, agent_acts)
        assert lead is not None
        reason = f"cue:{lead.cue[1]}" if lead.cue and lead.cue[0] == kind else f"intent:{lead.top}"
        return Decision(kind, True, lead.top, reason, lead.index, skip=frozenset(settled))

    questions = of.get("question", [])
    contents = of.get("content", [])
    preambles = [r for r, x in zip(readings, roles, strict=True) if x == "preamble"]

    def leaning() -> tuple[str, Reading | None]:
        """The kind of a ticket without a grievance: what its turns lean to (a request
        asked as a question, "能不能装个红绿灯？", leans to its act), else ``inquiry``."""
        doubtful = [r for r in contents + preambles if r.case >= DOUBT_CASE] + [
            r for r in questions if r.case >= STRONG_CASE and not r.announced
        ]
        if doubtful or agent_acts:
            return _vote(doubtful, agent_acts)
        return "inquiry", next(iter(questions or contents), None)

    # 3. the agent promised a follow-up
    referral = next((a for a in acting if a.referral), None)
    # 4. something nobody answered
    open_turns = [r for r in questions + contents if not answered_after(r.turn)]
    if referral is not None or open_turns:
        kind, leaning_lead = leaning()
        lead = leaning_lead or next(iter(open_turns), None)
        reason = f"referral:{referral.referral}" if referral else "unanswered"
        intent = _asked(lead) if kind == "inquiry" else lead.top if lead else None
        skip = frozenset(settled if kind != "inquiry" else reactions)
        return Decision(kind, True, intent, reason, lead.index if lead else None, skip=skip)

    # 5. every question answered on the call, or nothing asked at all
    lead = next(iter(questions or contents), None)
    if lead is None:
        top = next((r.top for r in readings if r.top), None)
        return Decision("inquiry", False, top, "no request", None, skip=frozenset(reactions))
    return Decision(
        "inquiry", False, _asked(lead), "answered", lead.index, skip=frozenset(reactions)
    )


def _asked(reading: Reading | None) -> str | None:
    """The intent recorded for a question: the model's, when it read one (inquire,
    check_status), else ``inquire`` (the model took a long question for a complaint)."""
    if reading is None:
        return None
    return reading.top if reading.top in ASK_INTENTS or reading.top is None else "inquire"


def _first(readings: Sequence[Reading], roles: Sequence[str]) -> int | None:
    return next((r.index for r, x in zip(readings, roles, strict=True) if x != "filler"), None)


def _sentences(
    units: Sequence[Unit], parses: Sequence[dict[str, Any]], skip: frozenset[int] = frozenset()
) -> list[tuple[int, str]]:
    """(unit index, sentence) of content sentences, in the order they were said."""
    found = []
    for index, (unit, parse) in enumerate(zip(units, parses, strict=True)):
        name, _ = _intent(parse)
        if name in FILLER_INTENTS or index in skip:
            continue
        for sentence in _SENTENCE.findall(unit.text):
            sentence = _OPENING.sub("", sentence.strip())
            core = _PUNCT.sub("", sentence)
            if len(core) < 4 or core in FILLERS or _NUMBER.search(sentence):
                continue
            found.append((index, sentence))
    return found


def _summary(
    units: Sequence[Unit],
    parses: Sequence[dict[str, Any]],
    lead_unit: int | None,
    skip: frozenset[int] = frozenset(),
    quote: Callable[[int, str], str] | None = None,
) -> str:
    """The deciding sentence first, then the sentences richest in keywords, as said
    (``quote`` gives a sentence as written in the call)."""
    sentences = _sentences(units, parses, skip) or _sentences(units, parses)
    if quote is not None:
        sentences = [(i, quote(i, sentence)) for i, sentence in sentences]
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
    order = [lead, *sorted(chosen[1:])]
    return _clip("".join(_ended(sentences[i][1]) for i in order))


def _ended(sentence: str) -> str:
    return sentence if sentence[-1] in SENTENCE_ENDS + "，,。" else sentence + "。"


def _clip(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = text.replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _entities(parses: Sequence[dict[str, Any]], prefer: set[int]) -> dict[str, str]:
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
    scores: dict[str, float] = defaultdict(float)
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
    turns: Sequence[TurnText] | None = None,
) -> Understanding:
    """Decide what the call was about from the parses of its citizen turns and the agent's.

    ``turns``: the call's :func:`read_turns`, when the caller has them already.
    Summary, description and the transcript (``written``) are the call as written;
    only the model reads the normalized copy.
    """
    if turns is None:
        turns = read_turns(call)
    decision = decide(call, units, parses, leftovers, turns)
    prefer = (
        {i for i, p in enumerate(parses) if ACT_BY_INTENT.get(_intent(p)[0] or "") == decision.kind}
        if decision.ticket
        else set()
    )
    entities = _entities(parses, prefer)
    for name, value in _leftover_identifiers(leftovers).items():
        entities.setdefault(name, value)
    category, confidence = _aggregate_category(units, parses)
    description = "\n".join(
        turns[i].written
        for i, t in enumerate(call.turns)
        if t.speaker == "citizen" and t.text.strip()
    )
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 1] + "…"
    return Understanding(
        kind=decision.kind,
        ticket=decision.ticket,
        intent=decision.intent,
        reason=decision.reason,
        intents=tuple(_intent(p)[0] or "" for p in parses),
        category=category,
        category_confidence=confidence,
        place=entities.get("place"),
        occurred=entities.get("time"),
        service=entities.get("service"),
        phone=entities.get("phone"),
        id_number=entities.get("id_number"),
        summary=_summary(units, parses, decision.lead, decision.skip, _quoter(units, turns)),
        description=description,
        danger=decision.danger,
        written=tuple(turn.written for turn in turns),
    )
