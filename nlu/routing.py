"""The department router's model: which first-level category a citizen message belongs to.

This module imports neither Rasa nor TensorFlow, so ``citizenbot classify`` and
the benchmarks load a model in well under a second; the Rasa component
(:mod:`nlu.components.department_router`) is a thin wrapper around it.

The model was chosen by measurement (``docs/routing.md``): TF-IDF over jieba
words, jieba search-mode words (the dictionary sub-words of long words, so
``物业公司`` also counts as ``物业``) and character 1–3 grams of the whole message,
words and characters of the subject line again (a citizen's subject names the
problem; the body mostly tells the story), an NB-SVM (one-vs-rest linear SVMs on
features scaled by each class's naive-Bayes log-count ratio), and a softmax
temperature fitted on out-of-fold decision values so that the confidence means
something. The NB-SVM is still one linear model over the tf-idf features (the
ratio is folded into the stored coefficients), so prediction costs the same as a
plain SVM. :func:`baseline_config` builds the same pipeline with those
improvements switched off — the linear baseline every measurement is compared
against.

A saved model is a directory of JSON and ``.npz`` files, never a pickle: the
CLI loads models out of archives it did not make.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

FORMAT_VERSION = 1
#: Directory of a saved Router inside the Rasa component's resource; ``citizenbot
#: classify`` looks for it in model archives.
RESOURCE_DIR = "router"
_META = "router.json"
_ARRAYS = "router.npz"

#: Characters that carry meaning for routing; punctuation, digits and Latin
#: letters alone say nothing about the department.
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SUBJECT_END = "。"
_SURROGATES = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class RouterConfig:
    """Hyper-parameters; the defaults are the measured choice (``docs/routing.md``)."""

    subject_weight: float = 1.0
    """Weight of the subject-line views; 0 drops them (the baseline)."""
    search_weight: float = 1.0
    """Weight of the jieba search-mode view of the body; 0 drops it (the baseline)."""
    nb_alpha: float = 1.0
    """Smoothing of the NB-SVM log-count ratios; 0 means a plain one-vs-rest SVM
    (the baseline). The ratio lifts terms typical of one class over the others,
    which the SVM's uniform L2 penalty alone does not (+0.011 macro-F1 on the
    4-seed mean, ``docs/routing.md``)."""
    svm_c: float = 0.5
    char_ngrams: tuple[int, int] = (1, 3)
    min_df: int = 2
    calibrate: bool = True
    """Fit a softmax temperature on out-of-fold decisions (else temperature 1)."""
    calibration_folds: int = 2
    max_chars: int = 1000
    """Longer inputs are cut: the subject and the start of the body decide. Cutting
    at 1,000 (one message in eight is longer) kept macro-F1 within noise and
    brought p95 latency under 5 ms (``docs/routing.md``)."""
    min_cjk_chars: int = 6
    """Inputs with fewer distinct Chinese characters than this are nothing like a
    training message (≥ 23 characters): a single character, punctuation, English,
    one character pasted 20,000 times. Their confidence is shrunk toward uniform."""
    seed: int = 42
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RouterConfig:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in raw.items() if k in known}
        if "char_ngrams" in values:
            values["char_ngrams"] = tuple(values["char_ngrams"])
        return cls(**values)


def baseline_config(**overrides: Any) -> RouterConfig:
    """The strong linear baseline: words + char 1–3 grams, one SVM, no subject view.

    Kept alongside the router so every evaluation measures both in the same run.
    """
    values: dict[str, Any] = {
        "subject_weight": 0.0, "search_weight": 0.0, "nb_alpha": 0.0, "calibrate": False,
    }
    values.update(overrides)
    return RouterConfig(**values)


def normalize(text: str) -> str:
    """Full-width forms to half-width and Latin to lower case, so ``ＡＢＣ`` is ``abc``.

    A lone surrogate (JSON may carry one as ``\\ud800``) becomes U+FFFD: the
    segmenter takes only text that encodes as UTF-8.
    """
    return _SURROGATES.sub("\ufffd", unicodedata.normalize("NFKC", text).lower())


def split_subject(text: str) -> tuple[str, str]:
    """(subject, whole text): the data is ``subject + "。" + body``; a chat line is all subject."""
    subject, sep, _ = text.partition(_SUBJECT_END)
    return (subject if sep else text), text


class _Words:
    """jieba words through jieba-rs (``rjieba``): jieba's dictionary and algorithm,
    about 20× faster on a long message, where segmenting was half the latency
    budget (``docs/routing.md``). A private instance: Rasa's JiebaTokenizer loads
    user dictionaries into Python jieba's global one, which would make words at
    prediction time differ from the words the model was trained on."""

    def __init__(self) -> None:
        import rjieba

        self._tokenizer = rjieba.Jieba()

    def __call__(self, text: str) -> list[str]:
        return [w for w in self._tokenizer.cut(text, True) if w.strip()]

    def search(self, text: str) -> list[str]:
        """Search-mode words: the words plus their dictionary sub-words (物业公司 → 物业)."""
        return [w for w in self._tokenizer.cut_for_search(text, True) if w.strip()]


_WORDS: _Words | None = None


def _jieba() -> _Words:
    global _WORDS
    if _WORDS is None:
        _WORDS = _Words()
    return _WORDS


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _word_vectorizer(min_df: int, vocabulary: dict[str, int] | None = None) -> TfidfVectorizer:
    # Input is already a token list (jieba runs once per text, shared by two views).
    return TfidfVectorizer(
        analyzer=_identity, sublinear_tf=True, min_df=min_df, vocabulary=vocabulary
    )


def _char_vectorizer(
    ngrams: tuple[int, int], min_df: int, vocabulary: dict[str, int] | None = None
) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char",
        ngram_range=ngrams,
        sublinear_tf=True,
        min_df=min_df,
        lowercase=False,
        vocabulary=vocabulary,
    )


_VIEWS = ("body_words", "body_chars", "subject_words", "subject_chars", "body_search")
#: Views whose input is a token list (the others are strings, cut into char n-grams).
_TOKEN_VIEWS = frozenset({"body_words", "subject_words", "body_search"})
_WHITE_SPACES = re.compile(r"\s\s+")  # as scikit-learn's char analyzer


def _char_ngrams(text: str, ngrams: tuple[int, int]) -> list[str]:
    """The n-grams scikit-learn's ``analyzer="char"`` yields, in any order."""
    text = _WHITE_SPACES.sub(" ", text)
    grams: list[str] = []
    for n in range(ngrams[0], min(ngrams[1], len(text)) + 1):
        grams.extend([text[i : i + n] for i in range(len(text) - n + 1)])
    return grams


#: Bits per character of a packed n-gram: every code point + 1 fits in 21 bits,
#: so n-grams of up to three characters pack into one int64.
_CODE_BITS = 21
_MAX_PACKED = 3


def _codes(text: str) -> np.ndarray:
    """Code point + 1 of each character (0 is left free, so packed n-grams of different
    lengths never collide)."""
    raw = text.encode("utf-32-le", "surrogatepass")
    return np.frombuffer(raw, dtype=np.uint32).astype(np.int64) + 1


def _packed_ngrams(text: str, ngrams: tuple[int, int]) -> np.ndarray:
    """The n-grams of :func:`_char_ngrams`, each packed into one integer."""
    codes = _codes(_WHITE_SPACES.sub(" ", text))
    size = len(codes)
    parts = []
    for n in range(ngrams[0], min(ngrams[1], size) + 1):
        key = codes[: size - n + 1].copy()
        for j in range(1, n):
            key |= codes[j : size - n + 1 + j] << (_CODE_BITS * j)
        parts.append(key)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _packed_terms(terms: list[str]) -> np.ndarray:
    """Vocabulary terms packed as :func:`_packed_ngrams` packs an n-gram, all terms of
    one length at once (one call per term took 2.7 s for a 300,000-term vocabulary,
    paid by the first message after loading)."""
    keys = np.zeros(len(terms), dtype=np.int64)
    lengths = np.fromiter(map(len, terms), dtype=np.intp, count=len(terms))
    for n in np.unique(lengths):
        rows = np.flatnonzero(lengths == n)
        codes = _codes("".join([terms[i] for i in rows])).reshape(len(rows), int(n))
        for j in range(int(n)):
            keys[rows] |= codes[:, j] << (_CODE_BITS * j)
    return keys


def _dict_columns(vocabulary: dict[str, int], terms: list[str]) -> np.ndarray:
    # map runs in C; -1 marks a term outside the vocabulary
    found = np.fromiter(map(vocabulary.get, terms, repeat(-1)), dtype=np.intp, count=len(terms))
    return found[found >= 0]


class _WordColumns:
    """Vocabulary columns of a token list."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.vocabulary = vocabulary

    def __call__(self, terms: list[str]) -> np.ndarray:
        return _dict_columns(self.vocabulary, terms)


class _CharColumns:
    """Vocabulary columns of a text's char n-grams, found without hashing strings.

    A 1,000-character message has ~3,000 n-grams; building and hashing them as
    Python strings was 40 % of the routing latency. Packed into integers, they
    are looked up with one binary search over the sorted vocabulary keys.
    N-grams longer than three characters do not pack and take the string path.
    """

    def __init__(self, vocabulary: dict[str, int], ngrams: tuple[int, int]) -> None:
        self.vocabulary = vocabulary
        self.ngrams = ngrams
        self.packed = ngrams[1] <= _MAX_PACKED
        if self.packed:
            keys = _packed_terms(list(vocabulary))
            columns = np.fromiter(vocabulary.values(), dtype=np.intp, count=len(vocabulary))
            order = np.argsort(keys)
            self.keys, self.columns = keys[order], columns[order]

    def __call__(self, text: str) -> np.ndarray:
        if not self.packed:
            return _dict_columns(self.vocabulary, _char_ngrams(text, self.ngrams))
        grams = _packed_ngrams(text, self.ngrams)
        if not grams.size or not self.keys.size:
            return np.zeros(0, dtype=np.intp)
        at = np.minimum(np.searchsorted(self.keys, grams), len(self.keys) - 1)
        return self.columns[at[self.keys[at] == grams]]


@dataclass
class _Compiled:
    # (view, column lookup, idf, column offset, view weight) in feature-matrix order
    views: list[tuple[str, _WordColumns | _CharColumns, np.ndarray, int, float]]
    weights: np.ndarray  # (features, labels), C-ordered
    intercept: np.ndarray

    def score(self, inputs: dict[str, list[Any]], row: int) -> np.ndarray:
        """Decision values of one message: sublinear tf-idf, l2 per view, dot coef."""
        z = self.intercept.copy()
        for view, columns, idf, offset, weight in self.views:
            found = columns(inputs[view][row])
            if not found.size:
                continue
            index, counts = np.unique(found, return_counts=True)
            tf = counts.astype(np.float64)
            values = (1.0 + np.log(tf)) * idf[index]
            values *= weight / np.sqrt(values @ values)
            z += values @ self.weights[offset + index]
        return z


class Router:
    """Category of a citizen message, with a calibrated confidence in [0, 1]."""

    def __init__(self, config: RouterConfig | None = None) -> None:
        self.config = config or RouterConfig()
        self.labels: list[str] = []
        self._vectorizers: dict[str, TfidfVectorizer] = {}
        self._coef: np.ndarray = np.zeros((0, 0))
        self._intercept: np.ndarray = np.zeros(0)
        self.temperature: float = 1.0
        self._compiled: _Compiled | None = None

    # -- features -------------------------------------------------------------------------

    def _views(self) -> tuple[str, ...]:
        return tuple(view for view in _VIEWS if self._weight(view) > 0)

    def _inputs(self, texts: Sequence[str]) -> dict[str, list[Any]]:
        words = _jieba()
        cut = [normalize(t)[: self.config.max_chars] for t in texts]
        body_words = [words(t) for t in cut]
        inputs: dict[str, list[Any]] = {"body_words": body_words, "body_chars": cut}
        if self.config.subject_weight > 0:
            subjects = [split_subject(t)[0] for t in cut]
            inputs["subject_words"] = [words(s) for s in subjects]
            inputs["subject_chars"] = subjects
        if self.config.search_weight > 0:
            inputs["body_search"] = [words.search(t) for t in cut]
        return inputs

    def _weight(self, view: str) -> float:
        if view.startswith("subject"):
            return self.config.subject_weight
        if view == "body_search":
            return self.config.search_weight
        return 1.0

    def _fit_features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        inputs = self._inputs(texts)
        blocks = []
        for view in self._views():
            if view in _TOKEN_VIEWS:
                vec = _word_vectorizer(self.config.min_df)
            else:
                vec = _char_vectorizer(self.config.char_ngrams, self.config.min_df)
            blocks.append(self._weight(view) * vec.fit_transform(inputs[view]))
            self._vectorizers[view] = vec
        return sparse.hstack(blocks, format="csr")

    def _features(self, texts: Sequence[str]) -> sparse.csr_matrix:
        inputs = self._inputs(texts)
        blocks = [
            self._weight(view) * self._vectorizers[view].transform(inputs[view])
            for view in self._views()
        ]
        return sparse.hstack(blocks, format="csr")

    # -- training -------------------------------------------------------------------------

    def _svm(self) -> LinearSVC:
        return LinearSVC(C=self.config.svm_c, random_state=self.config.seed)

    def _fit_linear(
        self, x: sparse.csr_matrix, y: np.ndarray, labels: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(coef (labels, features), intercept (labels,)) of one linear score per label.

        With ``nb_alpha`` > 0 this is an NB-SVM (Wang & Manning 2012): for label
        k the features are scaled by r_k = log((p_k/|p_k|₁) / (q_k/|q_k|₁)), p_k
        (q_k) being α plus the number of messages of label k (of the other
        labels) that contain each feature, and a binary SVM is fitted on the
        tf-idf x ⊙ r_k. Its score (x ⊙ r_k)·w_k + b_k equals x·(w_k ⊙ r_k) + b_k,
        so storing w_k ⊙ r_k keeps scoring, the saved format and latency those
        of a plain linear model. Counting messages (binarised features) rather
        than summing tf-idf is what helps: measured on four splits, ratios from
        tf-idf sums gave 0.920 macro-F1, no better than the plain SVM, and
        document counts 0.931 (``docs/routing.md``).
        """
        alpha = self.config.nb_alpha
        if alpha <= 0:
            svm = self._svm().fit(x, y)
            columns = [labels.index(str(c)) for c in svm.classes_]
            coef, intercept = svm.coef_, svm.intercept_
            if len(svm.classes_) == 2:  # sklearn keeps one row for two classes
                coef = np.vstack([-coef, coef])
                intercept = np.concatenate([-intercept, intercept])
            full_coef = np.zeros((len(labels), x.shape[1]))
            full_intercept = np.zeros(len(labels))  # a label absent from a fold scores 0
            full_coef[columns], full_intercept[columns] = coef, intercept
            return full_coef, full_intercept
        coef = np.zeros((len(labels), x.shape[1]))
        intercept = np.zeros(len(labels))
        present = x.copy()
        present.data[:] = 1.0
        total = np.asarray(present.sum(axis=0)).ravel()
        for k, label in enumerate(labels):
            mine = y == label
            if not mine.any() or mine.all():
                continue
            p = alpha + np.asarray(present[mine].sum(axis=0)).ravel()
            q = alpha + (total - (p - alpha))
            r = np.log((p / p.sum()) / (q / q.sum()))
            svm = self._svm().fit(x @ sparse.diags(r), mine)
            coef[k] = svm.coef_[0] * r
            intercept[k] = svm.intercept_[0]
        return coef, intercept

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> Router:
        """Train on (text, label) pairs; at least two labels are needed."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        if len(set(labels)) < 2:
            raise ValueError("the router needs at least two categories to learn from")
        x = self._fit_features(texts)
        y = np.asarray(labels)
        self.labels = [str(label) for label in np.unique(y)]
        self._compiled = None
        coef, intercept = self._fit_linear(x, y, self.labels)
        self._coef = coef.astype(np.float32)
        self._intercept = intercept.astype(np.float64)
        self.temperature = self._fit_temperature(x, y) if self.config.calibrate else 1.0
        return self

    def _fit_temperature(self, x: sparse.csr_matrix, y: np.ndarray) -> float:
        """Scale that makes softmax(decision * scale) honest on messages the SVM did not see.

        One scalar keeps the ranking of the SVM and costs a few extra fits; the
        vocabulary is shared across folds (a small optimism, measured by the
        eval report's calibration error).
        """
        _, counts = np.unique(y, return_counts=True)
        folds = min(self.config.calibration_folds, int(counts.min()))
        if folds < 2:
            return 1.0
        scores = np.zeros((len(y), len(self.labels)), dtype=np.float64)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.config.seed)
        for train, held in splitter.split(np.zeros(len(y)), y):
            coef, intercept = self._fit_linear(x[train], y[train], self.labels)
            scores[held] = x[held] @ coef.T + intercept
        truth = np.array([self.labels.index(str(label)) for label in y])

        def nll(scale: float) -> float:
            z = scores * scale
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return float(-log_p[np.arange(len(truth)), truth].mean())

        return float(minimize_scalar(nll, bounds=(0.1, 100.0), method="bounded").x)

    # -- prediction -----------------------------------------------------------------------

    def _compile(self) -> _Compiled:
        """Lookup tables for scoring one message without scikit-learn's per-call overhead.

        ``TfidfVectorizer.transform`` costs ~0.5 ms per call before any work, and
        ``sparse @ coef.T`` copies the whole coefficient matrix each time; a chat
        message needs neither. The result equals the scikit-learn path
        (``tests/routing/test_router.py`` checks it).
        """
        if self._compiled is None:
            views, offset = [], 0
            for view in self._views():
                vec = self._vectorizers[view]
                columns: _WordColumns | _CharColumns = (
                    _WordColumns(vec.vocabulary_) if view in _TOKEN_VIEWS
                    else _CharColumns(vec.vocabulary_, self.config.char_ngrams)
                )
                views.append((view, columns, np.asarray(vec.idf_, dtype=np.float64),
                              offset, self._weight(view)))
                offset += len(vec.vocabulary_)
            weights = np.ascontiguousarray(self._coef.T, dtype=np.float64)
            self._compiled = _Compiled(views, weights, self._intercept.astype(np.float64))
        return self._compiled

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of probabilities over :attr:`labels`, one per text (any text, even empty)."""
        if not self.labels:
            raise RuntimeError("the router is not trained")
        texts = [t if isinstance(t, str) else str(t) for t in texts]
        if not texts:
            return np.zeros((0, len(self.labels)))
        compiled = self._compile()
        inputs = self._inputs(texts)
        z = np.vstack([compiled.score(inputs, row) for row in range(len(texts))])
        z *= self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        uniform = 1.0 / len(self.labels)
        for row, text in enumerate(texts):
            cjk = len(set(_CJK.findall(text[: self.config.max_chars])))
            trust = min(1.0, cjk / max(1, self.config.min_cjk_chars))
            if trust < 1.0:
                p[row] = trust * p[row] + (1.0 - trust) * uniform
        return p

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, confidence) per text; the label is always one of :attr:`labels`."""
        p = self.predict_proba(texts)
        best = p.argmax(axis=1)
        return [(self.labels[i], float(p[row, i])) for row, i in enumerate(best)]

    # -- persistence ----------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"coef": self._coef, "intercept": self._intercept}
        vocabularies: dict[str, list[str]] = {}
        for view, vec in self._vectorizers.items():
            terms = [""] * len(vec.vocabulary_)
            for term, index in vec.vocabulary_.items():
                terms[index] = term
            vocabularies[view] = terms
            arrays[f"idf_{view}"] = vec.idf_.astype(np.float64)
        meta = {
            "format": FORMAT_VERSION,
            "config": {k: v for k, v in asdict(self.config).items() if k != "extra"},
            "labels": self.labels,
            "temperature": self.temperature,
            "vocabularies": vocabularies,
        }
        (directory / _META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        np.savez_compressed(directory / _ARRAYS, **arrays)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Router:
        directory = Path(directory)
        meta = json.loads((directory / _META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: router format {meta.get('format')!r} not supported")
        # Models saved before the search view and the NB-SVM have neither; the
        # arrays are the same, so they still load (and predict as they did).
        config = {"search_weight": 0.0, "nb_alpha": 0.0, **meta["config"]}
        router = cls(RouterConfig.from_dict(config))
        router.labels = list(meta["labels"])
        router.temperature = float(meta["temperature"])
        with np.load(directory / _ARRAYS, allow_pickle=False) as arrays:
            router._coef = arrays["coef"]
            router._intercept = arrays["intercept"]
            for view, terms in meta["vocabularies"].items():
                vocabulary = {term: index for index, term in enumerate(terms)}
                if view in _TOKEN_VIEWS:
                    vec = _word_vectorizer(router.config.min_df, vocabulary)
                else:
                    vec = _char_vectorizer(router.config.char_ngrams, router.config.min_df,
                                           vocabulary)
                vec.idf_ = arrays[f"idf_{view}"]
                router._vectorizers[view] = vec
        router._compile()  # at load, not on the first citizen message
        return router

    @staticmethod
    def is_saved(directory: str | Path) -> bool:
        return (Path(directory) / _META).is_file() and (Path(directory) / _ARRAYS).is_file()


# -- data ----------------------------------------------------------------------------------


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Labelled rows ``{"id", "text", "label"}``; a broken line is an error naming its number."""
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) \
                    or not isinstance(row.get("label"), str):
                raise ValueError(f"{path}:{number}: needs string fields 'text' and 'label'")
            rows.append(row)
    return rows


def texts_labels(rows: Iterable[dict[str, Any]]) -> tuple[list[str], list[str]]:
    rows = list(rows)
    return [r["text"] for r in rows], [r["label"] for r in rows]
