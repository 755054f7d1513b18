"""Working days: weekdays, minus public holidays, plus make-up working days (调休).

China moves weekend days to build long holidays, so "Monday to Friday" is wrong
several times a year; the operator keeps the State Council's list in
``data/tickets/calendar.yml``. A year the list does not cover is an error
(:class:`UnknownYear`), not a silent Monday–Friday: a deadline off by a week of
Spring Festival is a broken promise to a citizen. Where a deadline must still be
set (a ticket is filed in late December before next year's days are known),
:meth:`WorkCalendar.weekdays_where_unknown` gives a calendar that computes
Monday–Friday for such years and logs an error naming the missing year.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import cache, lru_cache
from pathlib import Path

import yaml

from bot.settings import ROOT

DEFAULT_PATH = ROOT / "data" / "tickets" / "calendar.yml"

log = logging.getLogger(__name__)


class UnknownYear(LookupError):
    """The calendar has no holiday list for this year (add it to calendar.yml)."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"the working-day calendar does not know {year}: add the State Council's "
            f"{year} holidays and 调休 days and the year under `years` in {DEFAULT_PATH.name}"
        )
        self.year = year


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    #: the years whose holidays are listed (a year without holidays is still unknown)
    years: frozenset[int] = field(default_factory=frozenset)
    #: compute Monday–Friday for unknown years (logged) instead of raising
    weekdays_fallback: bool = False

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> WorkCalendar:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        holidays: set[date] = set()
        for item in data.get("holidays") or []:
            start = _as_date(item["from"])
            end = _as_date(item.get("to", item["from"]))
            holidays.update(start + timedelta(days=n) for n in range((end - start).days + 1))
        workdays = {_as_date(item["date"]) for item in data.get("workdays") or []}
        years = {int(year) for year in data.get("years") or []}
        listed = {day.year for day in holidays | workdays}
        if not listed <= years:
            raise ValueError(
                f"{path}: days listed for {sorted(listed - years)} but `years` says {sorted(years)}"
            )
        return cls(frozenset(holidays), frozenset(workdays), frozenset(years))

    @classmethod
    def of(
        cls,
        holidays: Iterable[date] = (),
        workdays: Iterable[date] = (),
        years: Iterable[int] | None = None,
    ) -> WorkCalendar:
        """A calendar from explicit days; it knows the years of those days unless told."""
        holidays, workdays = frozenset(holidays), frozenset(workdays)
        known = years if years is not None else {day.year for day in holidays | workdays}
        return cls(holidays, workdays, frozenset(known))

    def knows(self, year: int) -> bool:
        return year in self.years

    def weekdays_where_unknown(self) -> WorkCalendar:
        """This calendar, computing Monday–Friday (and logging it) for unknown years."""
        return replace(self, weekdays_fallback=True)

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years:
            if not self.weekdays_fallback:
                raise UnknownYear(day.year)
            _log_unknown(day.year)
            return day.weekday() < 5
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, day: date, n: int) -> date:
        """The nth working day after ``day`` (``day`` itself is not counted)."""
        current = day
        remaining = n
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_working_day(current):
                remaining -= 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in the half-open range (start, end]."""
        count = 0
        current = start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count

    def next_working_day_end(self, moment: datetime, n: int, end_of_day: time) -> datetime:
        """End of working hours on the nth working day after ``moment``'s local day."""
        day = self.add_working_days(moment.date(), n)
        return datetime.combine(day, end_of_day, tzinfo=moment.tzinfo)


@cache
def _log_unknown(year: int) -> None:
    """One error per missing year and process: loud in the log, not a flood."""
    log.error("%s; computing Monday–Friday for it meanwhile", UnknownYear(year))


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The operator's calendar (data/tickets/calendar.yml), read once per process.

    Used where an answer must be given now (deadlines, working hours for a
    handoff), so unknown years fall back to Monday–Friday with a logged error.
    """
    return WorkCalendar.load().weekdays_where_unknown()


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day in the operator's calendar (holidays, 调休)."""
    return default_calendar().is_working_day(day)
