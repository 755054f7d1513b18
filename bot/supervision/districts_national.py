"""China's administrative divisions (行政区划), read offline from a maintained data set.

Source: the ``china_location`` dictionary that the PyPI package ``jionlp`` ships
(``jionlp/dictionary/china_location.zip``): every 省, 地级市/州/盟, 区县 with its
official six-digit code (GB/T 2260, 统计用区划代码) and short name, and every
乡镇/街道 under it; the package is updated when the divisions change. The file is
read straight from the installed package, without importing ``jionlp`` (whose
import unpacks dictionaries into site-packages and prints a banner), and never
fetched at run time. Villages (村/社区) are skipped: their names repeat too often
to place anything.

:meth:`NationalDivisions.resolve` finds the 区县 a text names, wherever it is:

* **Mentions** are found by looking back from every character a division name can
  end with (省市区县旗州盟镇乡 …, 街道): the longest name ending there wins, so 市中区
  is not read as 中区. Texts are short (a place, the start of a summary), so this is
  a few dozen dictionary look-ups per text.
* **Ambiguous names** (朝阳区 is in Beijing and in Changchun; 城关镇 in 99 counties)
  are settled, in order, by what else the text names (a province or city, also by
  its short name right before the district: 长春朝阳区; a 街道/镇 under one
  candidate), then by the operator's home city, then the home province.
* A 区县 named but still ambiguous keeps its bare name (朝阳区) rather than a
  guess; a two-character name (城区, 东区, 和县) counts only when something settles
  it, since those are also ordinary words. A 街道/镇 alone places a text only when
  it settles to one county.
"""

from __future__ import annotations

import importlib.util
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

#: the package that ships the data set, and the file inside it
PACKAGE = "jionlp"
DATA_FILE = Path("dictionary") / "china_location.zip"
#: town-level names kept (乡镇/街道); others (农场, 工业园区 …) are not places people write
TOWN_SUFFIXES = ("街道", "镇", "乡")
#: placeholders in the statistical code list, not places
PLACEHOLDERS = ("市直辖行政区划", "省直辖行政区划", "市辖区", "省直辖县级行政区划")


class DataMissing(RuntimeError):
    """The national data set is not installed (the message says how to install it)."""


@dataclass(frozen=True)
class Division:
    """A province, city or county (区县) of the national list."""

    code: str
    name: str
    alias: str
    level: str  # province | city | county
    province: str
    city: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.province, self.city, self.name)


@dataclass(frozen=True)
class Place:
    """Where a text is: the county (区县) and what is above it, plus the 街道/镇 if named."""

    province: str
    city: str
    county: str
    code: str
    town: str = ""
    #: several counties share the name and nothing in the text settled which
    ambiguous: bool = False


@dataclass(frozen=True)
class Home:
    """The operator's own city and province: the first guess for an ambiguous name."""

    province: str = ""
    city: str = ""


def data_path() -> Path:
    """Where the installed package keeps the data set (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataMissing(
            f"the national division data set needs the {PACKAGE!r} package: "
            "run `make install` (or `pip install -c constraints.txt -e .`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DATA_FILE
    if not path.is_file():
        raise DataMissing(f"{path} is missing: reinstall {PACKAGE!r}")
    return path


#: a line of the data set down to 乡镇/街道 (villages are indented four tabs)
_KEPT_LINE = re.compile(r"^\t{0,3}[^\t\n].*$", re.MULTILINE)


def _read_lines(path: Path) -> list[str]:
    """The lines down to 乡镇/街道: the ~650,000 village lines are skipped in C."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".txt"))
        text = archive.read(name).decode("utf-8")
    return _KEPT_LINE.findall(text.replace("\r", ""))


class NationalDivisions:
    """Name → divisions indexes over the national list, and :meth:`resolve`."""

    def __init__(self, lines: Iterable[str]) -> None:
        self.provinces: dict[str, list[Division]] = defaultdict(list)
        self.cities: dict[str, list[Division]] = defaultdict(list)
        self.counties: dict[str, list[Division]] = defaultdict(list)
        #: town name → the counties that have a town of that name
        self.towns: dict[str, list[Division]] = defaultdict(list)
        #: short names (北京, 长春, 朝阳) → provinces and cities, for context only
        self.short: dict[str, list[Division]] = defaultdict(list)
        self.by_key: dict[tuple[str, str, str], Division] = {}
        province: Division | None = None
        city: Division | None = None
        county: Division | None = None
        for line in lines:
            if line.startswith("\t\t\t\t") or not line.strip():
                continue  # villages and communities
            depth = len(line) - len(line.lstrip("\t"))
            parts = line.strip().split("\t")
            if depth == 3:
                name = parts[0]
                if county is not None and len(name) >= 3 and name.endswith(TOWN_SUFFIXES):
                    self.towns[name].append(county)
                continue
            if len(parts) != 3:
                continue
            name, code, alias = parts
            if depth == 0:
                province = Division(code, name, alias, "province", name)
                self.provinces[name].append(province)
                self._short(alias, province)
                city = county = None
            elif depth == 1 and province is not None:
                city = Division(code, name, alias, "city", province.name, name)
                county = None
                if name not in PLACEHOLDERS:
                    self.cities[name].append(city)
                    for short in alias.split("/"):
                        self._short(short, city)
            elif depth == 2 and province is not None and city is not None:
                county = Division(code, name, alias, "county", province.name, city.name)
                if name not in PLACEHOLDERS:
                    self.counties[name].append(county)
                    self.by_key[county.key] = county
        self.names = frozenset([*self.provinces, *self.cities, *self.counties, *self.towns])
        sizes: dict[str, set[int]] = defaultdict(set)
        for name in self.names:
            sizes[name[-1]].add(len(name))
        #: last character of a name → the lengths of names ending with it, longest first
        self.sizes = {end: sorted(found, reverse=True) for end, found in sizes.items()}
        self.longest = max(map(len, self.names))
        self.longest_alias = max(map(len, self.short), default=2)

    def _short(self, alias: str, division: Division) -> None:
        if len(alias) >= 2 and alias != division.name:
            self.short[alias].append(division)

    @classmethod
    def load(cls, path: Path | None = None) -> NationalDivisions:
        return cls(_read_lines(path or data_path()))

    # -- home ------------------------------------------------------------------------

    def home(self, province: str = "", city: str = "") -> Home:
        """The configured home, as names of the list (full or short names; unknown: empty)."""
        found_city = self._named(city, self.cities, "city")
        found_province = self._named(province, self.provinces, "province")
        if found_city is not None and (
            found_province is None or found_province.name == found_city.province
        ):
            return Home(found_city.province, found_city.name)
        return Home(found_province.name if found_province else "", "")

    def _named(
        self, name: str, table: dict[str, list[Division]], level: str
    ) -> Division | None:
        name = (name or "").strip()
        if not name:
            return None
        exact = table.get(name) or []
        if len(exact) == 1:
            return exact[0]
        shorts = [d for d in self.short.get(name, []) if d.level == level]
        return shorts[0] if len(shorts) == 1 else None

    # -- resolving -------------------------------------------------------------------

    def mentions(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, name) of every division name in ``text``, longest at each end."""
        found: list[tuple[int, int, str]] = []
        names, sizes = self.names, self.sizes
        for end in range(2, len(text) + 1):
            for size in sizes.get(text[end - 1], ()):
                if size <= end and text[end - size : end] in names:
                    found.append((end - size, end, text[end - size : end]))
                    break
        # drop a mention inside a longer one (北京市 in 北京市朝阳区 is kept: they touch)
        kept = []
        for start, end, name in found:
            if not any(s <= start and end <= e and (s, e) != (start, end) for s, e, _ in found):
                kept.append((start, end, name))
        return kept

    def _short_before(self, text: str, start: int) -> list[Division]:
        """Provinces and cities named by their short name right before ``start`` (长春朝阳区)."""
        for size in range(min(self.longest_alias, start), 1, -1):
            hits = self.short.get(text[start - size : start])
            if hits:
                return hits
        return []

    def resolve(self, text: str | None, home: Home = Home()) -> Place | None:
        """The county ``text`` names, or None (see the module docstring for the rules)."""
        if not text:
            return None
        mentions = self.mentions(text)
        if not mentions:
            return None
        provinces: set[str] = set()
        cities: set[tuple[str, str]] = set()
        town_counties: list[tuple[str, list[Division]]] = []
        county_mentions: list[tuple[int, str]] = []
        for start, _end, name in mentions:
            for d in self.provinces.get(name, []):
                provinces.add(d.name)
            for d in self.cities.get(name, []):
                cities.add((d.province, d.name))
            if name in self.counties:
                county_mentions.append((start, name))
                for d in self._short_before(text, start):
                    if d.level == "province":
                        provinces.add(d.name)
                    else:
                        cities.add((d.province, d.name))
            if name in self.towns:
                town_counties.append((name, self.towns[name]))
        town_keys = {c.key for _, counties in town_counties for c in counties}

        tests = (
            lambda c: (c.province, c.city) in cities,
            lambda c: c.province in provinces,
            lambda c: c.key in town_keys,
            lambda c: bool(home.city) and (c.province, c.city) == (home.province, home.city),
            lambda c: bool(home.province) and c.province == home.province,
        )

        def settle(candidates: list[Division]) -> tuple[list[Division], bool]:
            """The candidates the evidence leaves, and whether any evidence spoke for them."""
            spoke = False
            for keep in tests:
                narrowed = [c for c in candidates if keep(c)]
                if narrowed:
                    candidates, spoke = narrowed, True
                if len(candidates) == 1:
                    break
            return candidates, spoke

        bare: str | None = None
        for _start, name in county_mentions:
            settled, spoke = settle(self.counties[name])
            if len(settled) == 1 and (len(name) >= 3 or spoke):
                # a two-character name (城区, 和县) is also an ordinary word: only with evidence
                return self._place(settled[0], self._town_in(settled[0], town_counties))
            if bare is None and len(settled) > 1 and len(name) >= 3:
                bare = name
        for town, counties in town_counties:
            settled, _spoke = settle(counties)
            if len(settled) == 1:
                return self._place(settled[0], town)
        if bare is not None:
            return Place("", "", bare, "", ambiguous=True)
        return None

    @staticmethod
    def _town_in(county: Division, towns: list[tuple[str, list[Division]]]) -> str:
        return next((name for name, counties in towns if county in counties), "")

    @staticmethod
    def _place(county: Division, town: str = "") -> Place:
        return Place(county.province, county.city, county.name, county.code, town)

    # -- labels ----------------------------------------------------------------------

    @staticmethod
    def label(place: Place, home: Home = Home()) -> str:
        """The district as statistics show it: 朝阳区 at home, 长春市朝阳区 elsewhere."""
        if place.ambiguous or not place.province:
            return place.county
        if home.city and (place.province, place.city) == (home.province, home.city):
            return place.county
        above = place.city if place.city and place.city not in PLACEHOLDERS else place.province
        return f"{above}{place.county}"

    def is_label(self, value: str) -> bool:
        """Whether ``value`` is a label :meth:`label` can give (a closed list, for open data)."""
        if value in self.counties:
            return True
        for size in range(2, min(len(value) - 1, self.longest) + 1):
            above, county = value[:size], value[size:]
            for c in self.counties.get(county, []):
                if above in (c.city, c.province):
                    return True
        return False

    def words_of(self, value: str) -> list[str]:
        """The names a label is made of (a hot spot's keywords must not repeat them)."""
        words = [value]
        for size in range(0, min(len(value) - 1, self.longest) + 1):
            above, county = value[:size], value[size:]
            for c in self.counties.get(county, []):
                if not above or above in (c.city, c.province):
                    words += [c.name, c.alias]
                    if above:
                        city = next(iter(self.cities.get(above, [])), None)
                        words += [above, *(city.alias.split("/") if city else [])]
        return list(dict.fromkeys(w for w in words if len(w) >= 2))


@lru_cache(maxsize=2)
def national_divisions(path: Path | None = None) -> NationalDivisions:
    """The national list, parsed once per process (~0.3 s)."""
    return NationalDivisions.load(path)
