"""Working days: weekdays, minus public holidays, plus make-up working days (调休).

China moves weekend days to build long holidays, so "Monday to Friday" is wrong
several times a year; the operator keeps the State Council's list in
``data/tickets/calendar.yml``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

import yaml

from bot.settings import ROOT

DEFAULT_PATH = ROOT / "data" / "tickets" / "calendar.yml"


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


@dataclass(frozen=True)
class WorkCalendar:
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> WorkCalendar:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        holidays: set[date] = set()
        for item in data.get("holidays") or []:
            start = _as_date(item["from"])
            end = _as_date(item.get("to", item["from"]))
            holidays.update(start + timedelta(days=n) for n in range((end - start).days + 1))
        workdays = {_as_date(item["date"]) for item in data.get("workdays") or []}
        return cls(frozenset(holidays), frozenset(workdays))

    @classmethod
    def of(cls, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> WorkCalendar:
        return cls(frozenset(holidays), frozenset(workdays))

    def is_working_day(self, day: date) -> bool:
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


@lru_cache(maxsize=1)
def default_calendar() -> WorkCalendar:
    """The operator's calendar (data/tickets/calendar.yml), read once per process."""
    return WorkCalendar.load()


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day in the operator's calendar (holidays, 调休)."""
    return default_calendar().is_working_day(day)
