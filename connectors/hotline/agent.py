"""What the agent did on a call: answered, promised a follow-up, handed over to 110/119/120.

The agent's turns are not parsed by the NLU (that would double the cost of an
ingest, and the model was trained on citizens, not on agents reading scripts).
They are read by cues instead, which works because 12345 agents speak to a
script: a case is closed on the call with a promise (转交、登记、派单、回复您),
a consultation with an answer, danger to life with a transfer to the emergency
services (给您转接119、立即拨打120). The phrases are data, in
:mod:`connectors.hotline.vocabulary`.

Each agent turn is read once into an :class:`AgentTurn`; :mod:`understand` then
asks, for each citizen turn, whether an answer came after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.hotline.vocabulary import (
    AGENT_ACT_CUES,
    CALL_WORDS,
    CANNOT_ANSWER_CUES,
    EMERGENCY_NUMBERS,
    HOLDING_PHRASES,
    INTAKE_CUES,
    QUESTION_PARTICLES,
    REDIRECT_CUES,
    REFERRAL_CUES,
    SENTENCE_ENDS,
    TRANSFER_WORDS,
    URGENCY_WORDS,
)

#: an agent sentence with fewer characters than this, once courtesy is taken out, says
#: nothing a caller could act on ("嗯，您说" / "好的，再见")
ANSWER_MIN_CHARS = 8

_SENTENCE = re.compile(f"[^{re.escape(SENTENCE_ENDS)}]+[{re.escape(SENTENCE_ENDS)}]*")
_QUESTION_END = re.compile(f"(?:[?？]|[{QUESTION_PARTICLES}][啊呀吧]?)[\\s。.!！]*$")
_HOLDING = re.compile("|".join(map(re.escape, sorted(HOLDING_PHRASES, key=len, reverse=True))))
_FILLER_CHARS = re.compile(r"[\s\W_]+")


def _alternatives(words: tuple[str, ...]) -> str:
    return "|".join(map(re.escape, sorted(words, key=len, reverse=True)))


_NUMBER = f"(?<!\\d)(?P<number>{_alternatives(EMERGENCY_NUMBERS)})(?!\\d)"
_WITHIN = "[^。！？!?；;]{0,10}?"
#: 转接119 / 给您转到110 / 通知电梯维保单位和119 / 立即拨打120 / 赶紧打110报警
_EMERGENCY = re.compile(
    f"(?:(?:{_alternatives(TRANSFER_WORDS)}){_WITHIN}{_NUMBER}"
    f"|(?:{_alternatives(URGENCY_WORDS)}){_WITHIN}(?:{_alternatives(CALL_WORDS)})"
    f"[^。！？!?；;]{{0,4}}?{_NUMBER.replace('number', 'number2')})"
)


@dataclass(frozen=True)
class AgentTurn:
    """One agent turn, read by cues."""

    #: index of the turn in the call
    turn: int
    #: says something the caller can act on: not only courtesy, a question back or intake
    answers: bool
    #: the promise of a follow-up it makes (转交 …), if any
    referral: str | None
    #: the emergency number it transfers to or tells the caller to ring now, if any
    emergency: str | None
    #: acts the agent names when summing the call up (您举报的 → report)
    acts: tuple[str, ...]
    #: an answer that sends the caller elsewhere with a grievance (您可以打12319反映)
    redirects: bool = False


def is_question(sentence: str) -> bool:
    """A sentence asked as a question: a question mark, or a final 吗/呢/么 without one."""
    return bool(_QUESTION_END.search(sentence.strip()))


def read_agent_turn(turn: int, text: str) -> AgentTurn:
    """Read one agent turn: answer, promise, emergency transfer, the act it names."""
    referral = next((cue for cue in REFERRAL_CUES if cue in text), None)
    match = _EMERGENCY.search(text)
    emergency = (match.group("number") or match.group("number2")) if match else None
    acts: list[str] = []
    answers = redirects = False
    cannot = any(cue in text for cue in CANNOT_ANSWER_CUES)
    for sentence in _SENTENCE.findall(text):
        if is_question(sentence):
            continue  # a question back to the caller ("具体在什么位置？")
        acts.extend(act for cue, act in AGENT_ACT_CUES.items() if cue in sentence)
        if cannot or referral or emergency or any(cue in sentence for cue in INTAKE_CUES):
            continue
        core = _FILLER_CHARS.sub("", _HOLDING.sub("", sentence))
        if len(core) >= ANSWER_MIN_CHARS:
            answers = True
            redirects = redirects or any(cue in sentence for cue in REDIRECT_CUES)
    return AgentTurn(turn, answers, referral, emergency, tuple(dict.fromkeys(acts)), redirects)
