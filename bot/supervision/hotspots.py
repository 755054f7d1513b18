"""Hot spots (热点): groups of similar open complaints about the same place.

Why this shape: supervisors need "what is blowing up where", readable at a
glance and computed in seconds over thousands of messages on two shared
cores. So:

* **Same place first.** Texts are grouped by district (``data/districts.yml`` and
  the national list, :mod:`bot.supervision.districts`) before any similarity is
  computed: two noise complaints in different districts are two problems, and
  the blocks keep every similarity matrix small.
* **TF-IDF over jieba words and character bigrams**, L2-normalised and stacked:
  words carry meaning, bigrams survive jieba's segmentation errors on place and
  estate names (小区, 路段) that the words would miss.
* **Leader clustering** on cosine similarity ≥ ``threshold``: the text with the
  most near neighbours becomes a leader and takes all its unassigned
  neighbours; repeat. One pass, no chaining (unlike single-link components,
  A~B~C does not pull unrelated A and C together), no k to choose, and the cost
  is one sparse matrix product per district block.
* **Label**: the cluster's district and its top keywords by summed word TF-IDF
  (stop words in ``data/hotspots/stopwords.txt`` skipped).
* **Heat** = Σ over the cluster's texts of ``0.5 ** (age_days / half_life) ×
  (1 + ln(1 + likes))``: every complaint counts, recent ones count more
  (half-life 7 days by default), and public support (likes, or tickets merged
  into it) adds with diminishing returns so one viral post cannot outweigh
  many fresh complaints.

Texts are masked with :func:`bot.privacy.mask_text` before tokenising, and
labels never contain digits, so a phone number cannot become a label.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.privacy import mask_text
from bot.settings import ROOT
from bot.supervision.districts import DistrictTable, district_table
from bot.supervision.texts import public_texts

STOPWORDS_FILE = ROOT / "data" / "hotspots" / "stopwords.txt"
#: cosine similarity (word + bigram TF-IDF) at which two texts describe one problem
DEFAULT_THRESHOLD = 0.30
#: characters of each text used (subject first): enough to say what and where
MAX_CHARS = 400
_KEEP = re.compile(r"^[\u4e00-\u9fffA-Za-z]{2,}$")
_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d")
UTC = timezone.utc


@dataclass(frozen=True)
class Doc:
    """One text to cluster: a message or an open ticket."""

    id: str
    text: str
    district: str
    time: datetime | None = None
    likes: int = 0


@dataclass
class Hotspot:
    label: str
    district: str
    keywords: list[str]
    ids: list[str]
    count: int
    likes: int
    latest: datetime | None
    heat: float
    examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latest"] = self.latest.isoformat() if self.latest else None
        data["heat"] = round(self.heat, 3)
        return data


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    lines = STOPWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip() for x in lines if x.strip() and not x.startswith("#"))


class _Words:
    """A private jieba instance (Rasa's tokenizer loads dictionaries into the global one)."""

    def __init__(self) -> None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.tokenizer = jieba.Tokenizer()
        user_dict = ROOT / "nlu" / "dictionaries" / "government.txt"
        if user_dict.exists():
            self.tokenizer.load_userdict(str(user_dict))

    def __call__(self, text: str) -> list[str]:
        return [w for w in self.tokenizer.lcut(text) if w.strip()]


@lru_cache(maxsize=1)
def _words() -> _Words:
    return _Words()


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _bigrams(text: str) -> list[str]:
    chars = [c for c in text if not c.isspace()]
    return [a + b for a, b in itertools.pairwise(chars)]


def parse_time(value: str | None) -> datetime | None:
    """The message board's times (``2019/2/28 11:25:05``), as naive local times."""
    value = (value or "").strip()
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def docs_from_csv(path: Path, table: DistrictTable | None = None) -> list[Doc]:
    """The message-board CSV (id, subject, body, time, likes[, dislikes])."""
    table = table or district_table()
    docs: list[Doc] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            subject, body = row.get("subject") or "", row.get("body") or ""
            docs.append(
                Doc(
                    id=str(row.get("id") or len(docs)),
                    text=f"{subject}。{body}",
                    district=table.of(subject, body),
                    time=parse_time(row.get("time")),
                    likes=int(row.get("likes") or 0) if str(row.get("likes", "")).isdigit() else 0,
                )
            )
    return docs


def _as_naive(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def find_hotspots(
    docs: Sequence[Doc],
    *,
    now: datetime | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    min_size: int = 2,
    half_life_days: float = 7.0,
    keywords: int = 4,
    top: int | None = None,
) -> list[Hotspot]:
    """Cluster ``docs`` and return the clusters of at least ``min_size``, hottest first.

    ``now`` dates the recency weight; by default the newest text's time (so a
    historical data set is scored as of its own end, not as of today).
    """
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    if not docs:
        return []
    texts = [mask_text(d.text)[:MAX_CHARS] for d in docs]
    words = _words()
    tokens = [words(t) for t in texts]
    word_vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=1)
    char_vec = TfidfVectorizer(analyzer=_bigrams, sublinear_tf=True, min_df=2)
    xw = word_vec.fit_transform(tokens)
    try:
        xc = char_vec.fit_transform(texts)
    except ValueError:  # too few texts for min_df=2: words alone
        xc = sparse.csr_matrix((len(texts), 0))
    x = normalize(sparse.hstack([xw, xc]).tocsr())
    vocab = np.array(word_vec.get_feature_names_out(), dtype=object)
    stop = _stopwords()
    usable = np.array([bool(_KEEP.match(w)) and w not in stop for w in vocab])

    times = [_as_naive(d.time) for d in docs]
    reference = _as_naive(now) or max((t for t in times if t), default=None)

    def weight(i: int) -> float:
        age = 0.0
        if reference is not None and times[i] is not None:
            age = max((reference - times[i]).total_seconds() / 86400, 0.0)  # type: ignore[operator]
        return 0.5 ** (age / half_life_days) * (1.0 + math.log1p(max(docs[i].likes, 0)))

    blocks: dict[str, list[int]] = {}
    for i, d in enumerate(docs):
        blocks.setdefault(d.district, []).append(i)

    found: list[Hotspot] = []
    for district, members in blocks.items():
        if len(members) < min_size:
            continue
        idx = np.array(members)
        for cluster in _leader_clusters(x[idx], threshold):
            if len(cluster) < min_size:
                continue
            rows = idx[cluster]
            scores = np.asarray(xw[rows].sum(axis=0)).ravel() * usable
            for name in (district, *district_aliases(district)):
                hit = np.where(vocab == name)[0]
                scores[hit] = 0
            order = [j for j in np.argsort(-scores)[: keywords * 3] if scores[j] > 0]
            top_words = _dedupe([str(vocab[j]) for j in order])[:keywords]
            rows_sorted = sorted(rows.tolist(), key=lambda r: -weight(r))
            latest = max((times[r] for r in rows_sorted if times[r]), default=None)
            found.append(
                Hotspot(
                    label=f"{district}·{'、'.join(top_words) or public_texts().no_keyword}",
                    district=district,
                    keywords=top_words,
                    ids=[docs[r].id for r in rows_sorted],
                    count=len(rows_sorted),
                    likes=int(sum(max(docs[r].likes, 0) for r in rows_sorted)),
                    latest=latest,
                    heat=float(sum(weight(r) for r in rows_sorted)),
                    examples=[texts[r].split("。")[0][:60] for r in rows_sorted[:3]],
                )
            )
    found.sort(key=lambda h: (-h.heat, -h.count, h.label))
    return found[:top] if top else found


def district_aliases(district: str) -> list[str]:
    """Other names of a district (its aliases, 朝阳 and 北京 for 北京市朝阳区): not keywords."""
    return district_table().words_of(district)


def _dedupe(words: Iterable[str]) -> list[str]:
    """Drop a keyword contained in a stronger one (小区 after 幸福小区)."""
    kept: list[str] = []
    for w in words:
        if not any(w in k or k in w for k in kept):
            kept.append(w)
    return kept


def _leader_clusters(x: Any, threshold: float, chunk: int = 2048) -> list[list[int]]:
    """Greedy leader clustering on cosine similarity (rows of ``x`` are unit vectors).

    Neighbour lists are built chunk by chunk so memory stays O(n × neighbours)
    even for a large block; the text with the most neighbours leads first.
    """
    import numpy as np

    n = x.shape[0]
    neighbours: list[np.ndarray] = []
    xt = x.T.tocsc()
    for start in range(0, n, chunk):
        sims = (x[start : start + chunk] @ xt).tocsr()
        for r in range(sims.shape[0]):
            lo, hi = sims.indptr[r], sims.indptr[r + 1]
            cols, vals = sims.indices[lo:hi], sims.data[lo:hi]
            neighbours.append(cols[vals >= threshold])
    order = sorted(range(n), key=lambda i: -len(neighbours[i]))
    assigned = np.zeros(n, dtype=bool)
    clusters: list[list[int]] = []
    for leader in order:
        if assigned[leader]:
            continue
        members = [int(j) for j in neighbours[leader] if not assigned[j]]
        if leader not in members:
            members.insert(0, leader)
        assigned[members] = True
        clusters.append(members)
    return clusters


def hotspots_json(spots: Sequence[Hotspot]) -> str:
    return json.dumps([s.to_dict() for s in spots], ensure_ascii=False, indent=2)
