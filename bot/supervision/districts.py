"""Which district a ticket belongs to, from its place (or, failing that, its text).

Two sources, tried in this order for each text (the place first, then the summary,
then the description):

1. **The operator's own list** (``data/districts.yml``): names with the aliases
   citizens write (local names, estates, development zones, the anonymised names
   of the demonstration data), plus regular expressions for the anonymised names
   of the public message data (A市A2区, K6县). It overrides and extends:
2. **The national list** of 省/市/区县/街道 (:mod:`bot.supervision.districts_national`),
   so a place anywhere in China resolves to its 区县. Ambiguous names settle by the
   rest of the text, then by the operator's home ``city`` and ``province``
   (``data/districts.yml``). Districts of the home city are labelled by their
   name (朝阳区), others with their city (长春市朝阳区).

Statistics need a closed set of values: a label is always a name from one of the
two lists, never free text; anything unmatched is counted under one ``unknown``
label rather than leaking a typed place into a chart or an export.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from bot.settings import ROOT
from bot.supervision.districts_national import (
    DataMissing,
    Home,
    NationalDivisions,
    national_divisions,
)

DISTRICTS_FILE = ROOT / "data" / "districts.yml"
#: characters of a text searched for national names: a place, or a summary's start
NATIONAL_CHARS = 400
#: resolved texts remembered per table (dashboards re-read the same tickets)
CACHE_SIZE = 50_000

log = logging.getLogger(__name__)
_MISSING = object()


@dataclass(frozen=True)
class DistrictTable:
    """Operator aliases (longest first) → district name, patterns, then the national list."""

    city: str
    unknown: str
    names: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    patterns: tuple[re.Pattern[str], ...] = field(default=())
    province: str = ""
    national: NationalDivisions | None = field(default=None, repr=False, compare=False)
    home: Home = field(default_factory=Home)
    #: operator aliases that are also national 区县 names (朝阳区): the national rules
    #: decide which 朝阳区 a text means, and the home city's is counted under this name
    claimed: tuple[tuple[str, str], ...] = ()
    _cache: dict[str, str | None] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )

    @classmethod
    def load(cls, path: Path = DISTRICTS_FILE) -> DistrictTable:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        pairs: list[tuple[str, str]] = []
        names: list[str] = []
        for item in raw.get("districts") or []:
            name = str(item["name"])
            names.append(name)
            for alias in {name, *[str(a) for a in item.get("aliases") or []]}:
                pairs.append((alias, name))
        pairs.sort(key=lambda p: -len(p[0]))
        national: NationalDivisions | None = None
        home = Home()
        city, province = str(raw.get("city") or ""), str(raw.get("province") or "")
        if raw.get("national", True):
            try:
                national = national_divisions()
            except DataMissing as exc:  # the operator's list still works
                log.warning("national districts unavailable: %s", exc)
            else:
                home = national.home(province, city)
        claimed = tuple(
            (alias, name) for alias, name in pairs
            if national is not None and len(alias) >= 3 and alias in national.counties
        )
        pairs = [pair for pair in pairs if pair not in claimed]
        return cls(
            city=city,
            unknown=str(raw.get("unknown") or "未知"),
            names=tuple(names),
            aliases=tuple(pairs),
            patterns=tuple(re.compile(p) for p in raw.get("patterns") or []),
            province=province,
            national=national,
            home=home,
            claimed=claimed,
        )

    def find(self, *texts: str | None) -> str | None:
        """The district named in the first text that names one (operator list first)."""
        for text in texts:
            if not text:
                continue
            found = self._find_one(text)
            if found is not None:
                return found
        return None

    def _find_one(self, text: str) -> str | None:
        for alias, name in self.aliases:
            if alias in text:
                return name
        for pattern in self.patterns:
            match = pattern.search(text)
            if match:
                return match.group(0)
        if self.national is None:
            return None
        text = text[:NATIONAL_CHARS]
        cached = self._cache.get(text, _MISSING)  # one look-up: another thread may clear it
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        place = self.national.resolve(text, self.home)
        label = self.national.label(place, self.home) if place is not None else None
        # a home (or unsettled) 区县 the operator named: counted under the operator's name
        label = dict(self.claimed).get(label, label) if label is not None else None
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[text] = label
        return label

    def of(self, *texts: str | None) -> str:
        """Like :meth:`find`, with the ``unknown`` label when nothing matched."""
        return self.find(*texts) or self.unknown

    def is_label(self, value: str) -> bool:
        """Whether ``value`` is a label this table can give (open data publishes only those)."""
        if value == self.unknown or value in self.names:
            return True
        if any(p.fullmatch(value) for p in self.patterns):
            return True
        return self.national is not None and self.national.is_label(value)

    def words_of(self, district: str) -> list[str]:
        """The names and aliases a district label stands for (kept out of hot-spot keywords)."""
        words = [alias for alias, name in (*self.aliases, *self.claimed) if name == district]
        if self.national is not None:
            words += self.national.words_of(district)
        return list(dict.fromkeys(w for w in words if w != district))


@lru_cache(maxsize=4)
def district_table(path: Path = DISTRICTS_FILE) -> DistrictTable:
    return DistrictTable.load(path)
