"""Danger to life recognised by words: the one reader of ``data/emergency.yml``.

The intent model may call "着火了！车库有辆电动车起火了" a complaint (it is also
one); a fire is still a fire. These rules are checked on every chat message (the
:class:`~nlu.components.emergency.EmergencyDetector` in the pipeline) and every
hotline call, whatever the model says, and name the number the citizen must call.
They are operator data: a keyword added to the file works after a restart,
without retraining.

Matching runs on the normalized text (:func:`nlu.text.normalize`), so traditional
characters and full-width forms match the simplified keywords.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from nlu.text import normalize

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "emergency.yml"


@dataclass(frozen=True)
class Danger:
    """What was recognised: the response naming the number, and the words that said so."""

    response: str
    keyword: str
    #: the citizen asks for a number or about prevention; nothing is happening
    question: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"response": self.response, "keyword": self.keyword, "question": self.question}


@dataclass(frozen=True)
class EmergencyRules:
    rules: tuple[tuple[str, tuple[str, ...]], ...]
    questions: tuple[str, ...] = ()
    #: phrases that hold a keyword but name no danger; removed before matching
    not_danger: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> EmergencyRules:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        rules = tuple(
            (str(rule["response"]), tuple(normalize(str(k)) for k in rule["keywords"] if k))
            for rule in data.get("rules") or []
        )
        questions = tuple(normalize(str(q)) for q in data.get("questions") or [] if q)
        harmless = tuple(normalize(str(q)) for q in data.get("not_danger") or [] if q)
        return cls(rules, questions, tuple(sorted(harmless, key=len, reverse=True)))

    def match(self, text: str) -> Danger | None:
        """The first rule whose keyword the text contains, or None."""
        return self.match_normalized(normalize(text))

    def match_normalized(self, plain: str) -> Danger | None:
        """:meth:`match` for text already in :func:`nlu.text.normalize` form (the pipeline's)."""
        for phrase in self.not_danger:
            plain = plain.replace(phrase, " ")
        for response, keywords in self.rules:
            for keyword in keywords:
                if keyword in plain:
                    question = any(q in plain for q in self.questions)
                    return Danger(response, keyword, question)
        return None


@lru_cache(maxsize=4)
def rules(path: Path | str = DEFAULT_PATH) -> EmergencyRules:
    """The rules of ``path``, read once per process."""
    return EmergencyRules.load(path)


def recognise(text: str) -> Danger | None:
    """Danger in ``text`` by the default rules (``data/emergency.yml``)."""
    return rules().match(text)
