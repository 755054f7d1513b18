"""Which district a ticket belongs to, from its place (or, failing that, its text).

The district table is operator data (``data/districts.yml``): names with the
aliases citizens write, plus regular expressions for the anonymised names of
the public message data (A市A2区, K6县). Statistics need a small closed set of
values; anything unmatched is counted under one ``unknown`` label rather than
leaking a free-text place into a chart or an export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from bot.settings import ROOT

DISTRICTS_FILE = ROOT / "data" / "districts.yml"


@dataclass(frozen=True)
class DistrictTable:
    """Aliases (longest first) → district name, plus fallback patterns."""

    city: str
    unknown: str
    names: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...]
    patterns: tuple[re.Pattern[str], ...] = field(default=())

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
        return cls(
            city=str(raw.get("city") or ""),
            unknown=str(raw.get("unknown") or "未知"),
            names=tuple(names),
            aliases=tuple(pairs),
            patterns=tuple(re.compile(p) for p in raw.get("patterns") or []),
        )

    def find(self, *texts: str | None) -> str | None:
        """The district named in the first text that names one (aliases before patterns)."""
        for text in texts:
            if not text:
                continue
            for alias, name in self.aliases:
                if alias in text:
                    return name
            for pattern in self.patterns:
                match = pattern.search(text)
                if match:
                    return match.group(0)
        return None

    def of(self, *texts: str | None) -> str:
        """Like :meth:`find`, with the ``unknown`` label when nothing matched."""
        return self.find(*texts) or self.unknown


@lru_cache(maxsize=4)
def district_table(path: Path = DISTRICTS_FILE) -> DistrictTable:
    return DistrictTable.load(path)
