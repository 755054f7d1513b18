"""The intent model: a calibrated linear classifier over jieba words and characters.

On our few thousand hand-written examples a linear model over word and character
n-grams beats DIET (docs/conversations.md: 0.903 vs 0.855 macro-F1 in 3-fold CV)
and trains in seconds instead of a quarter of an hour, so operators can add a
phrase and see its effect at once. This module imports neither Rasa nor
TensorFlow; :mod:`nlu.components.intent_classifier` wraps it as a graph component
and feeds it the jieba tokens of Rasa's tokenizer (our user dictionary included).

Features, each view tf-idf weighted (sublinear tf) and l2-normalised:

* words: jieba tokens and token bigrams, with ``^``/``$`` marking the start and the
  end of the message, so "好" alone (affirm) differs from "好的谢谢" (thank);
* characters: 1–3 grams of ``^text$``, which carry unseen compounds (幸福里小区) and
  typos that jieba cuts differently;
* characters inside words: 1–2 grams of each jieba word padded with a boundary mark
  (`` 停``, ``停止``, ``止 ``), so the model knows which characters start or end a
  word: 停 as a word of its own (cancel) differs from 停 inside 停电 (a complaint),
  and an unseen word still shares its first and last characters with known ones.

Classifier: one multi-class linear SVM (Crammer & Singer: all intents' weights
are fitted jointly, so each intent's score is trained against its nearest rivals
rather than against all others lumped together; docs/nlu.md has the figures).
The NB-SVM weighting of :mod:`nlu.routing` is still available (``nb_alpha``) with
one-vs-rest SVMs; it was worse here. Prediction is one sparse dot product per view.

Confidence: softmax of the decision values times a temperature fitted on
out-of-fold decision values (minimum negative log-likelihood), so that
``FallbackClassifier``'s threshold (0.5) and ambiguity margin (0.05) compare
probabilities that mean something on messages the model did not see.

A saved model is JSON plus ``.npz`` (no pickle): models are loaded from archives.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from nlu.routing import _CharColumns, _WordColumns

FORMAT_VERSION = 2
_META = "intents.json"
_ARRAYS = "intents.npz"
START, END = "^", "$"
_VIEWS = ("words", "chars", "wordchars")


@dataclass(frozen=True)
class IntentModelConfig:
    """Hyper-parameters; the defaults are the measured choice (docs/nlu.md)."""

    word_ngrams: int = 1
    """Longest run of jieba tokens used as one feature (1 = words only)."""
    char_ngrams: tuple[int, int] = (1, 3)
    """Character n-gram lengths; at most 3 (they are looked up as packed integers)."""
    word_chars: tuple[int, int] = (1, 2)
    """Character n-gram lengths inside each jieba word, with word-boundary marks."""
    word_weight: float = 1.0
    char_weight: float = 2.0
    word_char_weight: float = 1.0
    pos_feature: bool = True
    """One term per word for its part of speech in jieba's dictionary."""
    length_feature: bool = True
    """One term for the message's length bucket."""
    lexicon_repeat: int = 1
    """How many times a lexicon hit counts as a word (its weight in the word view)."""
    min_df: int = 1
    nb_alpha: float = 0.0
    """Smoothing of the naive-Bayes ratios; 0 = plain one-vs-rest SVM."""
    svm_c: float = 1.0
    balanced: bool = False
    """Weigh each binary SVM's two sides equally (an intent against all others)."""
    joint: bool = True
    """One Crammer-Singer multi-class SVM instead of one-vs-rest (ignored with nb_alpha)."""
    calibration_folds: int = 3
    max_chars: int = 500
    """Longer messages are cut: a chat message this long is a story, its start decides."""
    seed: int = 42

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IntentModelConfig:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in raw.items() if k in known}
        for key in ("char_ngrams", "word_chars"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def word_terms(tokens: Sequence[str], longest: int) -> list[str]:
    """Tokens and token n-grams (joined by a space) with start and end markers."""
    words = [START, *(t.lower() for t in tokens if t.strip()), END]
    terms = words[1:-1] or [START + END]
    for n in range(2, longest + 1):
        terms.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return terms


_BOUNDARY = " "


def word_char_terms(tokens: Sequence[str], ngrams: tuple[int, int]) -> list[str]:
    """Character n-grams inside each word, the word padded with a boundary mark.

    The same n-grams as scikit-learn's ``char_wb`` analyzer, cut from jieba's
    words instead of from whitespace: where a word starts and ends is what a
    plain character n-gram of the message does not know.
    """
    terms: list[str] = []
    low, high = ngrams
    for token in tokens:
        word = token.strip().lower()
        if not word:
            continue
        padded = _BOUNDARY + word + _BOUNDARY
        for n in range(low, min(high, len(padded)) + 1):
            terms.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return terms


def lexicon_regexes(
    lookups: Mapping[str, Sequence[str]], regexes: Mapping[str, str] | None = None
) -> dict[str, str]:
    """One pattern per lexicon: a lookup table's words as an alternation, or a regex."""
    patterns = {
        name: "|".join(re.escape(word.lower()) for word in sorted(words, key=len, reverse=True))
        for name, words in lookups.items()
        if words
    }
    patterns.update(regexes or {})
    return patterns


def char_text(text: str, max_chars: int) -> str:
    """The text the character n-grams are cut from: lower case, marked start and end."""
    return START + text[:max_chars].lower() + END


#: upper ends of the message-length buckets (characters)
_LENGTHS = (1, 2, 3, 5, 8, 12, 18, 26)


def _length_bucket(size: int) -> int:
    """Index of the length bucket: a bare answer and a whole story read differently."""
    return next((i for i, top in enumerate(_LENGTHS) if size <= top), len(_LENGTHS))


def _identity(terms: list[str]) -> list[str]:
    return terms


class IntentModel:
    """Intent of a message, with calibrated probabilities over all intents."""

    def __init__(self, config: IntentModelConfig | None = None) -> None:
        self.config = config or IntentModelConfig()
        self.labels: list[str] = []
        self.temperature = 1.0
        self._vocabularies: dict[str, dict[str, int]] = {}
        self._idf: dict[str, np.ndarray] = {}
        self._coef = np.zeros((0, 0))
        self._intercept = np.zeros(0)
        self._lookup: dict[str, _WordColumns | _CharColumns] = {}
        self._weights = np.zeros((0, 0))
        self.lexicons: dict[str, str] = {}
        self._compiled_lexicons: list[tuple[str, re.Pattern[str]]] = []

    # -- features -------------------------------------------------------------------------

    def _words(self, text: str, tokens: Sequence[str]) -> list[str]:
        """Word-view terms: words, word n-grams and one term per lexicon that matches.

        A lexicon (``data/nlu/lexicons.yml``: insults, emergencies, greetings …)
        makes an insult or an emergency word that no example contains still count.
        """
        terms = word_terms(tokens, self.config.word_ngrams)
        if self.config.pos_feature:
            from nlu.entities import word_tags

            tags = word_tags()
            terms.extend(f"pos:{tags.get(t.lower(), '?')}" for t in tokens if t.strip())
        if self.config.length_feature:
            terms.append(f"len:{_length_bucket(len(text))}")
        lowered = text.lower()
        for name, pattern in self._compiled_lexicons:
            if pattern.search(lowered):
                terms.extend([f"lex:{name}"] * self.config.lexicon_repeat)
        return terms

    def _view_inputs(
        self, texts: Sequence[str], tokens: Sequence[Sequence[str]]
    ) -> dict[str, list[Any]]:
        return {
            "words": [self._words(text, t) for text, t in zip(texts, tokens, strict=True)],
            "chars": [char_text(t, self.config.max_chars) for t in texts],
            "wordchars": [word_char_terms(t, self.config.word_chars) for t in tokens],
        }

    def _compile_lexicons(self) -> None:
        self._compiled_lexicons = [
            (name, re.compile(pattern)) for name, pattern in sorted(self.lexicons.items())
        ]

    def _weight(self, view: str) -> float:
        return {
            "words": self.config.word_weight,
            "chars": self.config.char_weight,
            "wordchars": self.config.word_char_weight,
        }[view]

    def _fit_features(self, inputs: dict[str, list[Any]]) -> sparse.csr_matrix:
        blocks = []
        for view in _VIEWS:
            if view != "chars":
                vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True,
                                      min_df=self.config.min_df)
            else:
                vec = TfidfVectorizer(analyzer="char", ngram_range=self.config.char_ngrams,
                                      sublinear_tf=True, min_df=self.config.min_df, lowercase=False)
            blocks.append(self._weight(view) * vec.fit_transform(inputs[view]))
            self._vocabularies[view] = dict(vec.vocabulary_)
            self._idf[view] = np.asarray(vec.idf_, dtype=np.float64)
        return sparse.hstack(blocks, format="csr")

    # -- training -------------------------------------------------------------------------

    def _fit_linear(self, x: sparse.csr_matrix, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One linear score per label: joint multi-class SVM, or one-vs-rest (NB-)SVMs."""
        alpha = self.config.nb_alpha
        coef = np.zeros((len(self.labels), x.shape[1]))
        intercept = np.full(len(self.labels), -10.0)  # a label absent from a fold never wins
        if self.config.joint and alpha <= 0:
            present_labels = sorted(set(y))
            svm = LinearSVC(C=self.config.svm_c, multi_class="crammer_singer",
                            random_state=self.config.seed,
                            class_weight="balanced" if self.config.balanced else None)
            with warnings.catch_warnings():
                # liblinear's Crammer-Singer solver returns a garbage iteration count,
                # so scikit-learn warns of non-convergence after every fit
                # (scikit-learn issue #34029); the fit itself is fine.
                warnings.simplefilter("ignore", ConvergenceWarning)
                svm.fit(x, y)
            rows = np.searchsorted(self.labels, present_labels)
            if len(present_labels) == 2:  # scikit-learn returns one row for two classes
                coef[rows[1]], intercept[rows[1]] = svm.coef_[0], svm.intercept_[0]
                intercept[rows[0]] = 0.0
            else:
                coef[rows], intercept[rows] = svm.coef_, svm.intercept_
            return coef, intercept
        present = x.copy()
        present.data[:] = 1.0
        total = np.asarray(present.sum(axis=0)).ravel()
        for k, label in enumerate(self.labels):
            mine = y == label
            if not mine.any() or mine.all():
                continue
            if alpha > 0:
                p = alpha + np.asarray(present[mine].sum(axis=0)).ravel()
                q = alpha + (total - (p - alpha))
                r = np.log((p / p.sum()) / (q / q.sum()))
            else:
                r = np.ones(x.shape[1])
            svm = LinearSVC(C=self.config.svm_c, random_state=self.config.seed,
                            class_weight="balanced" if self.config.balanced else None)
            svm.fit(x @ sparse.diags(r), mine)
            coef[k] = svm.coef_[0] * r
            intercept[k] = svm.intercept_[0]
        return coef, intercept

    def fit(self, texts: Sequence[str], tokens: Sequence[Sequence[str]],
            labels: Sequence[str], lexicons: Mapping[str, str] | None = None) -> IntentModel:
        """Train on messages (normalised text and its jieba tokens) with their intents.

        ``lexicons`` maps a name to a regular expression (:func:`lexicon_regexes`).
        """
        self.lexicons = dict(lexicons or {})
        self._compile_lexicons()
        if not len(texts) == len(tokens) == len(labels):
            raise ValueError("texts, tokens and labels differ in length")
        if len(set(labels)) < 2:
            raise ValueError("the intent classifier needs at least two intents")
        y = np.asarray(labels)
        self.labels = sorted(set(labels))
        x = self._fit_features(self._view_inputs(texts, tokens))
        coef, intercept = self._fit_linear(x, y)
        self._coef, self._intercept = coef.astype(np.float32), intercept
        self.temperature = self._fit_temperature(x, y)
        self._compile()
        return self

    def _fit_temperature(self, x: sparse.csr_matrix, y: np.ndarray) -> float:
        """Softmax scale that minimises the log-loss of out-of-fold decision values.

        The SVM's training decisions are over-confident (it has seen those examples),
        so the scale is fitted on examples each fold's model did not see; the
        vocabulary and idf are shared across folds (a small optimism).
        """
        _, counts = np.unique(y, return_counts=True)
        folds = min(self.config.calibration_folds, int(counts.min()))
        if folds < 2:
            return 1.0
        scores = np.zeros((len(y), len(self.labels)))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.config.seed)
        for train, held in splitter.split(np.zeros(len(y)), y):
            coef, intercept = self._fit_linear(x[train], y[train])
            scores[held] = x[held] @ coef.T + intercept
        truth = np.searchsorted(self.labels, y)

        def nll(scale: float) -> float:
            z = scores * scale
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return float(-log_p[np.arange(len(truth)), truth].mean())

        return float(minimize_scalar(nll, bounds=(0.1, 100.0), method="bounded").x)

    # -- prediction -----------------------------------------------------------------------

    def _compile(self) -> None:
        """Lookup tables that score one message without scikit-learn's per-call overhead."""
        self._lookup = {
            "words": _WordColumns(self._vocabularies["words"]),
            "chars": _CharColumns(self._vocabularies["chars"], self.config.char_ngrams),
            "wordchars": _WordColumns(self._vocabularies["wordchars"]),
        }
        self._weights = np.ascontiguousarray(self._coef.T, dtype=np.float64)
        if self.config.pos_feature:
            from nlu.entities import word_tags

            word_tags()  # jieba's tag table loads now, not on the first citizen message

    def decision(self, text: str, tokens: Sequence[str]) -> np.ndarray:
        """Raw decision values of one message (before temperature and softmax)."""
        z = self._intercept.astype(np.float64).copy()
        offset = 0
        inputs: dict[str, Any] = {
            "words": self._words(text, tokens),
            "chars": char_text(text, self.config.max_chars),
            "wordchars": word_char_terms(tokens, self.config.word_chars),
        }
        for view in _VIEWS:
            found = self._lookup[view](inputs[view])
            if found.size:
                index, counts = np.unique(found, return_counts=True)
                values = (1.0 + np.log(counts)) * self._idf[view][index]
                values *= self._weight(view) / np.sqrt(values @ values)
                z += values @ self._weights[offset + index]
            offset += len(self._vocabularies[view])
        return z

    def predict_proba(self, text: str, tokens: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities over :attr:`labels`."""
        z = self.decision(text, tokens) * self.temperature
        z -= z.max()
        p = np.exp(z)
        return p / p.sum()

    def ranking(self, text: str, tokens: Sequence[str]) -> list[tuple[str, float]]:
        """(intent, probability), most probable first."""
        p = self.predict_proba(text, tokens)
        order = np.argsort(-p)
        return [(self.labels[i], float(p[i])) for i in order]

    # -- persistence ----------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocabularies = {}
        for view, vocabulary in self._vocabularies.items():
            terms = [""] * len(vocabulary)
            for term, index in vocabulary.items():
                terms[index] = term
            vocabularies[view] = terms
        meta = {
            "format": FORMAT_VERSION,
            "config": asdict(self.config),
            "labels": self.labels,
            "temperature": self.temperature,
            "lexicons": self.lexicons,
            "vocabularies": vocabularies,
        }
        (directory / _META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        np.savez_compressed(
            directory / _ARRAYS, coef=self._coef, intercept=self._intercept,
            **{f"idf_{view}": idf for view, idf in self._idf.items()},
        )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> IntentModel:
        directory = Path(directory)
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: intent model format {meta.get('format')!r} unknown")
        model = cls(IntentModelConfig.from_dict(meta["config"]))
        model.labels = list(meta["labels"])
        model.temperature = float(meta["temperature"])
        model.lexicons = dict(meta.get("lexicons") or {})
        model._compile_lexicons()
        model._vocabularies = {
            view: {term: i for i, term in enumerate(terms)}
            for view, terms in meta["vocabularies"].items()
        }
        with np.load(directory / _ARRAYS, allow_pickle=False) as arrays:
            model._coef = arrays["coef"]
            model._intercept = arrays["intercept"]
            model._idf = {view: arrays[f"idf_{view}"] for view in _VIEWS}
        model._compile()  # at load, not on the first citizen message
        return model
