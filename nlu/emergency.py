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

import re
from dataclasses import dataclass, field
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


class EmergencyRulesError(ValueError):
    """``data/emergency.yml`` cannot be used (a pattern that does not compile)."""


@dataclass(frozen=True)
class EmergencyRules:
    rules: tuple[tuple[str, tuple[str, ...]], ...]
    questions: tuple[str, ...] = ()
    #: phrases that hold a keyword but name no danger; removed before matching
    not_danger: tuple[str, ...] = ()
    #: per rule (same order as ``rules``): regular expressions for what no single
    #: keyword covers, e.g. any family member next to 走丢/失踪 ("我爷爷走丢了")
    patterns: tuple[tuple[re.Pattern[str], ...], ...] = field(default=())

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> EmergencyRules:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        raw_rules = data.get("rules") or []
        rules = tuple(
            (str(rule["response"]), tuple(normalize(str(k)) for k in rule["keywords"] if k))
            for rule in raw_rules
        )
        patterns = []
        for rule in raw_rules:
            compiled = []
            for pattern in rule.get("patterns") or []:
                try:
                    compiled.append(re.compile(str(pattern)))
                except re.error as exc:
                    raise EmergencyRulesError(
                        f"{path}: pattern {pattern!r} of {rule['response']}: {exc}"
                    ) from exc
            patterns.append(tuple(compiled))
        questions = tuple(normalize(str(q)) for q in data.get("questions") or [] if q)
        harmless = tuple(normalize(str(q)) for q in data.get("not_danger") or [] if q)
        return cls(rules, questions, tuple(sorted(harmless, key=len, reverse=True)),
                   tuple(patterns))

    def match(self, text: str) -> Danger | None:
        """The first rule whose keyword the text contains, or None."""
        return self.match_normalized(normalize(text))

    def match_normalized(self, plain: str) -> Danger | None:
        """:meth:`match` for text already in :func:`nlu.text.normalize` form (the pipeline's)."""
        for phrase in self.not_danger:
            plain = plain.replace(phrase, " ")
        for index, (response, keywords) in enumerate(self.rules):
            found = next((keyword for keyword in keywords if keyword in plain), None)
            if found is None and index < len(self.patterns):
                hit = next((m for p in self.patterns[index] if (m := p.search(plain))), None)
                found = hit.group(0) if hit else None
            if found is not None:
                question = any(q in plain for q in self.questions)
                return Danger(response, found, question)
        return None


@lru_cache(maxsize=4)
def rules(path: Path | str = DEFAULT_PATH) -> EmergencyRules:
    """The rules of ``path``, read once per process."""
    return EmergencyRules.load(path)


def recognise(text: str) -> Danger | None:
    """Danger in ``text`` by the default rules (``data/emergency.yml``)."""
    return rules().match(text)
