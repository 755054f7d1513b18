"""The FAQ knowledge base behind 咨询 answers (``data/kb/*.yml``).

Most 12345 contacts are consultations answered directly, so this lookup carries
most of the load. It is deliberately simple and inspectable: operators edit YAML
(format in ``data/kb/README.md``), and the ranking is BM25 over the entries'
question variants, tokenized the same way the NLU sees text (``nlu.text.normalize``
then jieba with our government dictionary). No model to train, the index is
built once when the action server loads the files.

A BM25 score has no fixed scale, so :meth:`KnowledgeBase.search` also reports a
``confidence`` in [0, 1]: how much of the question's informative words (IDF-
weighted) the best-matching variant shares, and vice versa. :meth:`decide` compares
it with ``kb_answer_threshold`` / ``kb_clarify_threshold`` from the settings:
answer, offer the top three as quick replies, or admit not knowing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from rank_bm25 import BM25Okapi

from nlu.text import normalize

__all__ = [
    "Answer",
    "Clarify",
    "Entry",
    "Hit",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "NotFound",
    "tokenize",
]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "data" / "kb"
#: the words the search ignores or rewrites; a subfolder, so never read as entries
VOCABULARY = DEFAULT_PATH / "search" / "vocabulary.yml"
DICTIONARIES = ROOT / "nlu" / "dictionaries"

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9\-]*$")
_REQUIRED = {"id": str, "questions": list, "answer": str, "department": str, "source": str}
_OPTIONAL = {"links": list}
_MAX_QUESTIONS = 12
#: How many BM25 candidates are re-ranked by confidence.
_RERANK = 10


class KnowledgeBaseError(ValueError):
    """A knowledge-base file is unreadable or an entry breaks the format."""


@dataclass(frozen=True)
class Entry:
    """One question-and-answer of the knowledge base, as written in its YAML file."""

    id: str
    questions: tuple[str, ...]
    answer: str
    department: str
    source: str
    topic: str = ""
    links: tuple[str, ...] = ()
    file: str = ""


@dataclass(frozen=True)
class Hit:
    """An entry found for a question: BM25 ``score`` and ``confidence`` in [0, 1]."""

    entry: Entry
    score: float
    confidence: float


@dataclass(frozen=True)
class Answer:
    """Confident enough to answer with ``entry``."""

    hit: Hit

    @property
    def entry(self) -> Entry:
        return self.hit.entry


@dataclass(frozen=True)
class Clarify:
    """Probably one of these (best first): ask the citizen which one, as quick replies."""

    hits: tuple[Hit, ...]

    @property
    def entries(self) -> tuple[Entry, ...]:
        return tuple(hit.entry for hit in self.hits)


@dataclass(frozen=True)
class NotFound:
    """Nothing close enough; ``hits`` are kept for logging and evaluation."""

    hits: tuple[Hit, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Vocabulary:
    """How the search reads a question: words it ignores, phrases and words it rewrites.

    Word lists are data an operator tunes (``data/kb/search/vocabulary.yml``), not
    code; a mistake in the file stops loading with an error that names it.
    """

    #: words that say nothing about *which* service is meant
    stopwords: frozenset[str]
    #: colloquial phrase -> the word it means, rewritten in the text before segmentation
    phrases: Mapping[str, str]
    #: segmented word -> the word it means (too short to rewrite safely as text)
    synonyms: Mapping[str, str]

    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # longest first, so a phrase inside a longer one never wins
        alternatives = sorted(map(re.escape, self.phrases), key=len, reverse=True)
        pattern = re.compile("|".join(alternatives)) if alternatives else None
        object.__setattr__(self, "_pattern", pattern)

    def rewrite(self, text: str) -> str:
        """``text`` with every colloquial phrase replaced by the word it means."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self.phrases[match.group()], text)

    @classmethod
    def load(cls, path: Path = VOCABULARY) -> Vocabulary:
        """Read and check the vocabulary file; :class:`KnowledgeBaseError` names the fault."""
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise KnowledgeBaseError(f"{name}: cannot read the vocabulary: {error}") from error
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise KnowledgeBaseError(f"{name}:{where} not valid YAML: {error}") from error
        expected = {"stopwords", "phrases", "synonyms"}
        if not isinstance(data, dict) or set(data) != expected:
            raise KnowledgeBaseError(
                f"{name}: expected a mapping with exactly {', '.join(sorted(expected))}"
            )
        if not isinstance(data["stopwords"], str):
            raise KnowledgeBaseError(f"{name}: 'stopwords' must be text, words separated by spaces")
        phrases = _word_map(name, "phrases", data["phrases"])
        short = sorted(phrase for phrase in phrases if len(phrase) < 2)
        if short:
            raise KnowledgeBaseError(
                f"{name}: 'phrases' must be two or more characters (it would rewrite inside "
                f"other words): {', '.join(short)}"
            )
        return cls(
            stopwords=frozenset(data["stopwords"].split()),
            phrases=phrases,
            synonyms=_word_map(name, "synonyms", data["synonyms"]),
        )


def _word_map(name: Path, section: str, raw: Any) -> dict[str, str]:
    """``{word: [variants]}`` from the file as ``{variant: word}``; a variant has one word."""
    if not isinstance(raw, dict):
        raise KnowledgeBaseError(f"{name}: '{section}' must map a word to a list of variants")
    mapped: dict[str, str] = {}
    for word, variants in raw.items():
        if not isinstance(word, str) or not word.strip() or not isinstance(variants, list):
            raise KnowledgeBaseError(
                f"{name}: '{section}': {word!r} must be a word with a list of variants"
            )
        for variant in variants:
            if not isinstance(variant, str) or not variant.strip() or variant != variant.strip():
                raise KnowledgeBaseError(
                    f"{name}: '{section}': {word}: {variant!r} must be a word without spaces"
                )
            if variant in mapped:
                raise KnowledgeBaseError(
                    f"{name}: '{section}': {variant} is listed under both "
                    f"{mapped[variant]} and {word}"
                )
            mapped[variant] = word
    return mapped


@lru_cache(maxsize=1)
def _vocabulary() -> Vocabulary:
    """The shipped vocabulary, read once per process (when the first text is tokenized)."""
    return Vocabulary.load()


@lru_cache(maxsize=1)
def _jieba() -> Any:
    """jieba with our government dictionary, loaded once per process."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    for path in sorted(DICTIONARIES.glob("*.txt")):
        jieba.load_userdict(str(path))
    return jieba


def tokenize(text: str) -> list[str]:
    """Normalized jieba words without stopwords, plus the characters of those words.

    The characters (prefixed ``#``, weighted half) let a word that jieba cuts
    differently in the question and in the entry, or that differs by one character
    (过户/过户手续, 签注/续签), still share evidence. On the held-out paraphrases
    this beat words alone and word-internal bigrams.
    """
    vocabulary = _vocabulary()
    text = vocabulary.rewrite(normalize(text).lower())
    words = []
    for word in _jieba().lcut(text):
        word = word.strip()
        if not word or word in vocabulary.stopwords or not any(ch.isalnum() for ch in word):
            continue
        words.append(vocabulary.synonyms.get(word, word))
    chars = {ch for word in words if len(word) > 1 for ch in word}
    return words + [f"#{ch}" for ch in sorted(chars)]


class KnowledgeBase:
    """Entries plus a BM25 index over every question variant."""

    def __init__(
        self,
        entries: Sequence[Entry],
        *,
        answer_threshold: float | None = None,
        clarify_threshold: float | None = None,
        margin: float = 0.08,
    ) -> None:
        if not entries:
            raise KnowledgeBaseError("the knowledge base has no entries")
        self.entries: tuple[Entry, ...] = tuple(entries)
        self._answer_threshold = answer_threshold
        self._clarify_threshold = clarify_threshold
        self._margin = margin
        self._owner: list[int] = []
        self._entry_docs: list[list[int]] = []
        documents: list[list[str]] = []
        for index, entry in enumerate(self.entries):
            self._entry_docs.append([])
            for question in entry.questions:
                self._entry_docs[index].append(len(documents))
                documents.append(tokenize(question))
                self._owner.append(index)
        self._documents = documents
        self._bm25 = BM25Okapi(documents)
        document_frequency: dict[str, int] = {}
        for document in documents:
            for token in set(document):
                document_frequency[token] = document_frequency.get(token, 0) + 1
        total = len(documents)
        self._idf = {
            token: math.log((total + 1) / (count + 0.5))
            for token, count in document_frequency.items()
        }
        self._unknown_idf = math.log((total + 1) / 0.5)

    # -- loading ---------------------------------------------------------------

    @classmethod
    def load(cls, path: Path = DEFAULT_PATH, **options: Any) -> KnowledgeBase:
        """Read every ``*.yml`` under ``path`` (a folder or one file) and index it.

        Raises :class:`KnowledgeBaseError` naming the file and the entry at fault.
        """
        path = Path(path)
        files = [path] if path.is_file() else sorted(path.glob("*.yml"))
        if not files:
            raise KnowledgeBaseError(f"{path}: no *.yml knowledge-base files")
        entries: list[Entry] = []
        seen: dict[str, str] = {}
        for file in files:
            for entry in _read_file(file):
                if entry.id in seen:
                    raise KnowledgeBaseError(
                        f"{file.name}: entry '{entry.id}': id already used in {seen[entry.id]}"
                    )
                seen[entry.id] = file.name
                entries.append(entry)
        return cls(entries, **options)

    # -- retrieval -------------------------------------------------------------

    def search(self, text: str, k: int = 3) -> list[Hit]:
        """The ``k`` best entries for ``text``, best first (one hit per entry)."""
        query = tokenize(text)
        if not query:
            return []
        scores = self._bm25.get_scores(query)
        best: dict[int, tuple[float, int]] = {}
        for doc, score in enumerate(scores):
            owner = self._owner[doc]
            if owner not in best or score > best[owner][0]:
                best[owner] = (float(score), doc)
        ranked = sorted(best.items(), key=lambda item: item[1][0], reverse=True)
        hits = []
        # BM25 preselects; the final order is by confidence, which also rewards a question
        # variant for not carrying many words the citizen did not say.
        for owner, (score, _doc) in ranked[: max(k, _RERANK)]:
            if score <= 0:
                break
            confidence = max(
                self._confidence(query, self._documents[doc])
                for doc in self._entry_docs[owner]
            )
            hits.append(Hit(self.entries[owner], score, confidence))
        hits.sort(key=lambda hit: (hit.confidence, hit.score), reverse=True)
        return hits[:k]

    def decide(self, text: str) -> Answer | Clarify | NotFound:
        """Answer when sure, offer up to three choices when unsure, else not found.

        Answer needs the top confidence at ``kb_answer_threshold``, a clear lead over
        the runner-up and at least two content words; a close race between two
        entries or a bare topic word is a question for the citizen, not a guess.
        """
        hits = self.search(text, k=3)
        if not hits:
            return NotFound()
        answer_at, clarify_at = self._thresholds()
        top = hits[0]
        runner_up = hits[1].confidence if len(hits) > 1 else 0.0
        # One content word ("公积金") names a topic, not a question: always ask which one.
        specific = sum(not token.startswith("#") for token in tokenize(text)) >= 2
        if (
            specific
            and top.confidence >= answer_at
            and top.confidence - runner_up >= self._margin
        ):
            return Answer(top)
        if top.confidence >= clarify_at:
            return Clarify(tuple(hit for hit in hits if hit.confidence >= clarify_at / 2))
        return NotFound(tuple(hits))

    def _thresholds(self) -> tuple[float, float]:
        answer_at, clarify_at = self._answer_threshold, self._clarify_threshold
        if answer_at is None or clarify_at is None:
            from bot.settings import get_settings

            settings = get_settings()
            answer_at = settings.kb_answer_threshold if answer_at is None else answer_at
            clarify_at = settings.kb_clarify_threshold if clarify_at is None else clarify_at
        return answer_at, clarify_at

    def _weight(self, token: str) -> float:
        weight = self._idf.get(token, self._unknown_idf)
        return weight * (0.5 if token.startswith("#") else 1.0)

    def _confidence(self, query: Iterable[str], document: Iterable[str]) -> float:
        """IDF-weighted overlap of query and question (Dice), in [0, 1]."""
        query_set, document_set = set(query), set(document)
        shared = sum(self._weight(token) for token in query_set & document_set)
        total = sum(self._weight(t) for t in query_set) + sum(
            self._weight(t) for t in document_set
        )
        return 0.0 if total <= 0 else min(1.0, 2 * shared / total)


def _join_lines(text: str) -> str:
    """Undo YAML line folding: no space between two Chinese characters, one elsewhere."""
    text = re.sub(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])", "", text.strip())
    return re.sub(r"\s+", " ", text)


def _read_file(file: Path) -> list[Entry]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise KnowledgeBaseError(f"{file.name}:{where} not valid YAML: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise KnowledgeBaseError(f"{file.name}: expected a mapping with an 'entries' list")
    topic = data.get("topic", file.stem)
    if not isinstance(topic, str):
        raise KnowledgeBaseError(f"{file.name}: 'topic' must be text")
    return [_entry(file, topic, index, raw) for index, raw in enumerate(data["entries"], 1)]


def _entry(file: Path, topic: str, index: int, raw: Any) -> Entry:
    label = f"{file.name}: entry #{index}"
    if not isinstance(raw, dict):
        raise KnowledgeBaseError(f"{label}: expected a mapping")
    if isinstance(raw.get("id"), str):
        label = f"{file.name}: entry '{raw['id']}'"
    unknown = set(raw) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise KnowledgeBaseError(f"{label}: unknown field(s) {', '.join(sorted(unknown))}")
    for name, kind in _REQUIRED.items():
        if name not in raw:
            raise KnowledgeBaseError(f"{label}: missing '{name}'")
        value = raw[name]
        if not isinstance(value, kind) or not value:
            raise KnowledgeBaseError(f"{label}: '{name}' must be a non-empty {kind.__name__}")
    if not _ID_RE.match(raw["id"]):
        raise KnowledgeBaseError(f"{label}: id must be lower-case letters, digits and '-'")
    questions = raw["questions"]
    if len(questions) > _MAX_QUESTIONS or not all(
        isinstance(q, str) and q.strip() for q in questions
    ):
        raise KnowledgeBaseError(
            f"{label}: 'questions' must be 1–{_MAX_QUESTIONS} non-empty strings"
        )
    links = raw.get("links") or []
    if not isinstance(links, list) or not all(
        isinstance(link, str) and link.startswith(("https://", "http://")) for link in links
    ):
        raise KnowledgeBaseError(f"{label}: 'links' must be a list of http(s) URLs")
    return Entry(
        id=raw["id"],
        questions=tuple(q.strip() for q in questions),
        answer=_join_lines(raw["answer"]),
        department=raw["department"].strip(),
        source=raw["source"].strip(),
        topic=topic,
        links=tuple(links),
        file=file.name,
    )
