"""Place, time, service and rating entities: a character-level CRF.

Why characters, not jieba words: an entity that jieba cuts differently from the
annotation is lost by any word-level tagger (Rasa issues #7409, #7550), and a
place is exactly what jieba cuts unpredictably ("西城区和平街道3号楼",
"东湖路和解放路"). Tagging each character (BIO) lets a span start and end
anywhere, so a place keeps its whole span: the road, the number and the
building. The jieba words are still used, as features: the word a character
belongs to, its position in that word and the word's length, so the segmenter's
knowledge (our user dictionary included) helps without constraining the spans.

Other features per character: the character and its neighbours (±2), character
bigrams and trigrams around it, its kind (digit, Chinese numeral, Latin,
punctuation), and whether it sits at the start or the end of the message (bare
answers such as "本周一" or "东湖路" are whole-message entities).

The model is python-crfsuite (the library behind Rasa's ``CRFEntityExtractor``),
trained with L-BFGS in a few seconds on our data; it is saved in crfsuite's own
binary format (data, not a pickle). This module imports neither Rasa nor TensorFlow.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pycrfsuite

FORMAT_VERSION = 1
_META = "entities.json"
_MODEL = "entities.crfsuite"
OUTSIDE = "O"

_CHINESE_DIGITS = frozenset("零〇一二三四五六七八九十百千万两半几")
_PUNCT = re.compile(r"[\W_]")

#: (entity, start, end) on the text, end exclusive
Span = tuple[str, int, int]


@dataclass(frozen=True)
class EntityModelConfig:
    """Hyper-parameters of the CRF (defaults measured in docs/nlu.md)."""

    c1: float = 0.05
    """L1 regularisation."""
    c2: float = 0.01
    """L2 regularisation."""
    max_iterations: int = 80
    window: int = 2
    """Characters on each side that are features of a character."""
    pos: bool = True
    """Use jieba's dictionary part of speech of each word as a feature."""
    augment: int = 2
    """Extra copies of each annotated example, its places swapped for other annotated
    places (seeded): the CRF sees each context with many names, so an unseen name in
    a known context is still found and kept whole, and annotated examples weigh more
    against the thousands without entities. Measured on two fold seeds: exact-span F1
    +0.014, place +0.03; swapping times and services too did not help (docs/nlu.md)."""
    use_intent: bool = True
    """Use the message's intent as a feature (gold in training, predicted in use)."""
    composed_places: float = 0.3
    """Share of the swapped places that are composed names (:func:`composed_place`):
    a common word plus a place suffix and maybe a building, such as 幸福小区3号楼 or
    团结村. Annotated places are mostly proper names jieba knows; composed ones teach
    the CRF that 幸福 or 和平 before 小区 or 街道 is part of the place."""
    place_suffixes: bool = True
    """Features from :data:`PLACE_SUFFIXES`: how far the next place suffix starts and
    the last one ended, so the first character of a name made of common words
    (幸福 in 幸福小区3号楼) knows a 小区 follows, and 与 between two roads knows it
    joins them."""
    seed: int = 42

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> EntityModelConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


#: Words that end a place name or a part of one (road, estate, building, unit,
#: village …). Longest first: at each character the longest one that starts there
#: is used. Only the words' position is a feature, so a common word among them (路,
#: 区, 号) is weighed by the CRF against its contexts, not trusted outright.
PLACE_SUFFIXES: tuple[str, ...] = tuple(sorted({
    "小区", "街道", "社区", "新村", "村", "组", "镇", "乡", "街", "路", "大道", "大街", "巷",
    "弄", "胡同", "号楼", "号院", "栋", "幢", "座", "单元", "楼", "号", "室", "区", "县", "市",
    "省", "州", "花园", "家园", "公寓", "广场", "大厦", "苑", "园", "府", "城", "庄", "湾",
    "交叉口", "路口", "十字路口", "公园", "市场", "车站", "医院", "学校", "中学", "小学",
    "大学", "中心", "菜场", "工业园", "开发区", "桥", "江", "河", "湖", "山",
}, key=lambda w: (-len(w), w)))
_SUFFIX_PATTERN = re.compile("|".join(re.escape(w) for w in PLACE_SUFFIXES))
_CONNECTORS = frozenset("和与跟及同、")
_SUFFIX_REACH = 6


def _suffix_features(text: str) -> list[list[str]]:
    """Per character: where the nearest place suffix lies ahead and behind.

    ``sf>d``: a suffix starts d characters ahead (≤ 6), ``sfin=`` the character is in
    one (its position B/I/E/S), ``sf<d``: one ended d characters before, ``cj``: a
    connector (和, 与 …) right after one suffix with another shortly ahead — the
    middle of "建设路与东湖路交叉口".
    """
    size = len(text)
    found = [(m.start(), m.end()) for m in _SUFFIX_PATTERN.finditer(text)]
    rows: list[list[str]] = [[] for _ in range(size)]
    for start, end in found:
        for i in range(start, end):
            position = "S" if end - start == 1 else "B" if i == start else (
                "E" if i == end - 1 else "I")
            rows[i].append(f"sfin={position}")
    ahead: list[int | None] = [None] * size
    behind: list[int | None] = [None] * size
    for start, end in found:
        for i in range(max(0, start - _SUFFIX_REACH), start):
            if ahead[i] is None:
                ahead[i] = start - i
        for i in range(end, min(size, end + _SUFFIX_REACH)):
            behind[i] = i - end + 1
    for i in range(size):
        if ahead[i] is not None:
            rows[i].append(f"sf>{ahead[i]}")
        if behind[i] is not None:
            rows[i].append(f"sf<{behind[i]}")
        if text[i] in _CONNECTORS and behind[i] == 1 and ahead[i] is not None:
            rows[i].append("cj")
    return rows


def _kind(char: str) -> str:
    if char.isdigit():
        return "d"
    if char in _CHINESE_DIGITS:
        return "n"
    if char.isascii() and char.isalpha():
        return "a"
    if char.isspace():
        return "s"
    if _PUNCT.match(char):
        return "p"
    return "c"


def char_features(
    text: str,
    tokens: Sequence[tuple[int, int]],
    window: int = 2,
    tags: dict[str, str] | None = None,
    intent: str | None = None,
    place_suffixes: bool = False,
) -> list[list[str]]:
    """Features of every character of ``text``; ``tokens`` are jieba (start, end) spans.

    ``tags`` maps a word to its part of speech in jieba's dictionary (ns place
    name, t time word, m numeral …), a hint for words no example contains.
    ``intent`` is the message's intent: the same word is an entity in one act and
    not in another (晚上 is when a complaint happened, but only a condition in a
    suggestion and a greeting in 晚上好). ``place_suffixes`` adds
    :func:`_suffix_features`.
    """
    size = len(text)
    suffixes = _suffix_features(text.lower()) if place_suffixes else None
    chars = ["<s>"] * window + list(text.lower()) + ["</s>"] * window
    kinds = [_kind(c) for c in text]
    word_of: list[tuple[str, str, int]] = [("", "S", 1)] * size
    for start, end in tokens:
        word = text[start:end].lower()
        length = end - start
        for i in range(max(0, start), min(end, size)):
            if length == 1:
                position = "S"
            elif i == start:
                position = "B"
            elif i == end - 1:
                position = "E"
            else:
                position = "M"
            word_of[i] = (word, position, length)
    rows: list[list[str]] = []
    for i in range(size):
        c = i + window  # index into the padded chars
        word, position, length = word_of[i]
        features = [
            "b",
            f"c={chars[c]}",
            f"k={kinds[i]}",
            f"w={word}",
            f"wp={position}",
            f"wpc={position}{chars[c]}",
            f"wl={min(length, 6)}{position}",
            f"b-={chars[c - 1]}{chars[c]}",
            f"b+={chars[c]}{chars[c + 1]}",
            f"t={chars[c - 1]}{chars[c]}{chars[c + 1]}",
        ]
        if tags is not None:
            features.append(f"pos={tags.get(word, '?')}{position}")
        if intent:
            features.append(f"i={intent}")
            features.append(f"iw={intent}|{word}")
        for d in range(1, window + 1):
            features.append(f"c-{d}={chars[c - d]}")
            features.append(f"c+{d}={chars[c + d]}")
            features.append(f"k-{d}={kinds[i - d] if i - d >= 0 else '^'}")
            features.append(f"k+{d}={kinds[i + d] if i + d < size else '$'}")
        if i > 0 and word_of[i - 1][1] in "ES":
            features.append(f"pw={word_of[i - 1][0]}" if position in "BS" else "pw-")
        if suffixes is not None:
            features.extend(suffixes[i])
        if i == 0:
            features.append("bos")
        if i == size - 1:
            features.append("eos")
        rows.append(features)
    return rows


def bio_tags(size: int, spans: Sequence[Span]) -> list[str]:
    tags = [OUTSIDE] * size
    for entity, start, end in spans:
        if start < 0 or end > size or start >= end:
            continue
        tags[start] = f"B-{entity}"
        for i in range(start + 1, end):
            tags[i] = f"I-{entity}"
    return tags


def spans_from_tags(tags: Sequence[str]) -> list[Span]:
    """Entity spans of a BIO sequence; an I- without its B- starts a span too."""
    spans: list[Span] = []
    current: str | None = None
    start = 0
    for i, tag in enumerate([*tags, OUTSIDE]):
        kind, _, entity = tag.partition("-")
        continues = kind == "I" and entity == current
        if current is not None and not continues:
            spans.append((current, start, i))
            current = None
        if kind in ("B", "I") and not continues:
            current, start = entity, i
    return spans


#: the entity whose values are swapped when augmenting
SWAPPED = "place"

#: Common words that Chinese estates, streets and villages are named after.
_NAME_WORDS = (
    "幸福", "和平", "建设", "光明", "团结", "胜利", "红星", "友谊", "解放", "人民", "新华",
    "文化", "东方", "阳光", "金色", "锦绣", "富强", "民主", "振兴", "向阳", "前进", "长青",
    "繁荣", "太平", "永安", "新民", "育才", "丰收", "朝阳", "紫薇", "桂花", "梧桐", "滨江",
    "南湖", "东风", "青山", "花园", "星光", "美好", "吉祥",
)
_NAME_KINDS = (
    ("小区", True), ("花园", True), ("家园", True), ("新村", True), ("公寓", True),
    ("街道", False), ("社区", False), ("路", False), ("街", False), ("大道", False),
    ("村", False), ("镇", False), ("里", True),
)
_BUILDINGS = ("{}号楼", "{}栋", "{}栋{}单元", "{}号楼{}单元", "{}号")


def composed_place(rng: Any) -> str:
    """A place name made of a common word and a suffix, maybe with its building."""
    kind, buildings = rng.choice(_NAME_KINDS)
    name = rng.choice(_NAME_WORDS) + kind
    if buildings and rng.random() < 0.5:
        name += rng.choice(_BUILDINGS).format(rng.randint(1, 20), rng.randint(1, 6))
    elif kind in ("路", "街", "大道") and rng.random() < 0.3:
        name += f"{rng.randint(1, 300)}号"
    return name


def _jieba_spans(text: str) -> list[tuple[int, int]]:
    import jieba

    return [(start, end) for _, start, end in jieba.tokenize(text)]


def _augmented(
    texts: Sequence[str],
    tokens: Sequence[Sequence[tuple[int, int]]],
    spans: Sequence[Sequence[Span]],
    intents: Sequence[str | None],
    copies: int,
    seed: int,
    composed: float = 0.0,
) -> tuple[list[str], list[Sequence[tuple[int, int]]], list[Sequence[Span]], list[str | None]]:
    """The examples plus ``copies`` variants of each annotated one, places swapped.

    Tokens of a variant come from jieba itself (with the user dictionary that
    ``JiebaDictionaryTokenizer`` loaded into it), as the served tokenizer would cut it.
    """
    import random

    rng = random.Random(seed)
    values: dict[str, list[str]] = {}
    for text, entity_spans in zip(texts, spans, strict=True):
        for entity, start, end in entity_spans:
            values.setdefault(entity, []).append(text[start:end])
    out_t, out_k, out_s, out_i = list(texts), list(tokens), list(spans), list(intents)
    for text, entity_spans, intent in zip(texts, spans, intents, strict=True):
        # every annotated example is repeated (entity contexts weigh more against the
        # thousands without any); only its places change
        if not entity_spans:
            continue
        ordered = sorted(entity_spans, key=lambda s: s[1])
        for _ in range(copies):
            pieces, new_spans, cursor, at = [], [], 0, 0
            for entity, start, end in ordered:
                if start < cursor:
                    break
                pieces.append(text[cursor:start])
                at += start - cursor
                swap = entity == SWAPPED and values.get(entity)
                if not swap:
                    value = text[start:end]
                elif rng.random() < composed:
                    value = composed_place(rng)
                else:
                    value = rng.choice(values[entity])
                pieces.append(value)
                new_spans.append((entity, at, at + len(value)))
                at += len(value)
                cursor = end
            pieces.append(text[cursor:])
            new_text = "".join(pieces)
            out_t.append(new_text)
            out_k.append(_jieba_spans(new_text))
            out_s.append(new_spans)
            out_i.append(intent)
    return out_t, out_k, out_s, out_i


_WORD_TAGS: dict[str, str] | None = None


def word_tags(dictionaries: Path | None = None) -> dict[str, str]:
    """jieba's part-of-speech table (word → tag) plus the tags of our user dictionaries.

    Read from jieba's packaged dictionary, not from a model: it is the same on every
    machine with the pinned jieba, and our own words come from ``nlu/dictionaries``.
    """
    global _WORD_TAGS
    if _WORD_TAGS is None:
        import jieba.posseg

        table = dict(jieba.posseg.dt.word_tag_tab)
        folder = dictionaries or Path(__file__).with_name("dictionaries")
        for path in sorted(folder.glob("*")):
            if not path.is_file():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    table[parts[0]] = parts[2]
        _WORD_TAGS = table
    return _WORD_TAGS


_CROSSING = re.compile(r"(交叉口|十字路口|路口|交汇处|交界处)$")


def join_crossings(
    text: str, found: Sequence[tuple[str, int, int, float]]
) -> list[tuple[str, int, int, float]]:
    """Two places joined by one connector (和, 与 …) into a crossing are one place.

    "建设路与东湖路交叉口" names one spot (the annotation rule of docs/nlu.md); the
    CRF has seen 和 between roads but rarely 与, 跟 or 及, and then tags two places.
    Only when the second place ends in 交叉口/路口/交汇处: "建设路和东湖路都堵" is two.
    """
    out: list[tuple[str, int, int, float]] = []
    for entity, start, end, confidence in sorted(found, key=lambda f: f[1]):
        if out:
            last_entity, last_start, last_end, last_confidence = out[-1]
            if (
                entity == last_entity == SWAPPED
                and start == last_end + 1
                and text[last_end] in _CONNECTORS
                and _CROSSING.search(text[start:end])
            ):
                out[-1] = (entity, last_start, end, min(confidence, last_confidence))
                continue
        out.append((entity, start, end, confidence))
    return out


class EntityModel:
    """Character-level CRF over BIO tags."""

    def __init__(self, config: EntityModelConfig | None = None) -> None:
        self.config = config or EntityModelConfig()
        self.labels: list[str] = []
        self._tagger: pycrfsuite.Tagger | None = None
        self._model_bytes: bytes = b""
        self._tags = word_tags() if self.config.pos else None

    def fit(
        self,
        texts: Sequence[str],
        tokens: Sequence[Sequence[tuple[int, int]]],
        spans: Sequence[Sequence[Span]],
        intents: Sequence[str | None] | None = None,
    ) -> EntityModel:
        """Train on normalised texts, their jieba token spans, entity spans and intents."""
        trainer = pycrfsuite.Trainer(verbose=False)
        intents = intents if intents is not None else [None] * len(texts)
        if self.config.augment > 0:
            texts, tokens, spans, intents = _augmented(
                texts, tokens, spans, intents, self.config.augment, self.config.seed,
                self.config.composed_places,
            )
        for text, token_spans, entity_spans, intent in zip(
            texts, tokens, spans, intents, strict=True
        ):
            if not text:
                continue
            trainer.append(
                self._features(text, token_spans, intent),
                bio_tags(len(text), entity_spans),
            )
        trainer.set_params({
            "c1": self.config.c1,
            "c2": self.config.c2,
            "max_iterations": self.config.max_iterations,
            "feature.possible_transitions": True,
        })
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / _MODEL
            trainer.train(str(path))
            self._model_bytes = path.read_bytes()
        self._open()
        return self

    def _open(self) -> None:
        tagger = pycrfsuite.Tagger()
        # crfsuite maps the model file; keep a private copy open for the tagger's lifetime
        self._file = tempfile.NamedTemporaryFile(suffix=".crfsuite")  # noqa: SIM115
        self._file.write(self._model_bytes)
        self._file.flush()
        tagger.open(self._file.name)
        self._tagger = tagger
        self.labels = sorted(tagger.labels())

    def _features(
        self, text: str, tokens: Sequence[tuple[int, int]], intent: str | None
    ) -> list[list[str]]:
        return char_features(
            text, tokens, self.config.window, self._tags,
            intent if self.config.use_intent else None, self.config.place_suffixes,
        )

    def predict(
        self, text: str, tokens: Sequence[tuple[int, int]], intent: str | None = None
    ) -> list[tuple[str, int, int, float]]:
        """(entity, start, end, confidence) of each entity in ``text``.

        The confidence is the mean marginal probability of the span's tags; places
        around a crossing are joined (:func:`join_crossings`).
        """
        if not text or self._tagger is None:
            return []
        tagger = self._tagger
        tags = tagger.tag(self._features(text, tokens, intent))
        found = []
        for entity, start, end in spans_from_tags(tags):
            marginals = [tagger.marginal(tags[i], i) for i in range(start, end)]
            confidence = math.fsum(marginals) / len(marginals)
            found.append((entity, start, end, confidence))
        return join_crossings(text, found)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT_VERSION, "config": asdict(self.config), "labels": self.labels}
        (directory / _META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        (directory / _MODEL).write_bytes(self._model_bytes)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> EntityModel:
        directory = Path(directory)
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: entity model format {meta.get('format')!r} unknown")
        model = cls(EntityModelConfig.from_dict(meta["config"]))
        model._model_bytes = (directory / _MODEL).read_bytes()
        model._open()
        return model
