"""SLA clocks: the deadline of a ticket, and how a pause moves it.

Deadlines are computed in local time (settings.timezone) because "3 working
days" means office days in the city, and returned as aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot.settings import ROOT
from bot.tickets.calendar import WorkCalendar, default_calendar

DEFAULT_PATH = ROOT / "data" / "tickets" / "sla.yml"


@dataclass(frozen=True)
class SlaClass:
    name: str
    label: str
    working_days: int | None = None
    hours: float | None = None

    def span(self) -> timedelta:
        """Rough length, only for ordering classes by strictness."""
        if self.hours is not None:
            return timedelta(hours=self.hours)
        return timedelta(days=(self.working_days or 0) * 7 / 5)


@dataclass(frozen=True)
class SlaPolicy:
    classes: dict[str, SlaClass]
    kinds: dict[str, str]
    calendar: WorkCalendar
    timezone: ZoneInfo
    end_of_day: time
    warn_hours: float = 24
    follow_up_working_days: int = 1

    @classmethod
    def load(
        cls,
        *,
        path: Path | str = DEFAULT_PATH,
        calendar: WorkCalendar | None = None,
        timezone: str = "Asia/Shanghai",
        working_hours: str = "09:00-17:30",
    ) -> SlaPolicy:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        classes = {
            name: SlaClass(
                name=name,
                label=str(spec.get("label", name)),
                working_days=spec.get("working_days"),
                hours=spec.get("hours"),
            )
            for name, spec in (data.get("classes") or {}).items()
        }
        end = working_hours.split("-")[-1].strip()
        return cls(
            classes=classes,
            kinds={str(k): str(v) for k, v in (data.get("kinds") or {}).items()},
            calendar=calendar or default_calendar(),
            timezone=ZoneInfo(timezone),
            end_of_day=time.fromisoformat(end),
            warn_hours=float(data.get("warn_hours", 24)),
            follow_up_working_days=int(data.get("follow_up_working_days", 1)),
        )

    def class_for(self, kind: str, category_class: str | None = None) -> str:
        """The stricter of the kind's class and the category's class."""
        candidates = [c for c in (self.kinds.get(kind), category_class) if c in self.classes]
        if not candidates:
            return min(self.classes.values(), key=lambda c: -c.span().total_seconds()).name
        return min(candidates, key=lambda c: self.classes[c].span())

    def deadline(self, sla_class: str, start: datetime) -> datetime:
        spec = self.classes[sla_class]
        local = start.astimezone(self.timezone)
        if spec.hours is not None:
            return local + timedelta(hours=spec.hours)
        return self.calendar.next_working_day_end(local, spec.working_days or 0, self.end_of_day)

    def extend_for_pause(
        self, sla_class: str, deadline: datetime, paused_at: datetime, resumed_at: datetime
    ) -> datetime:
        """Move a deadline by the time the clock stood still (waiting on the citizen)."""
        spec = self.classes[sla_class]
        if spec.hours is not None:
            return deadline + (resumed_at - paused_at)
        tz = self.timezone
        lost = self.calendar.working_days_between(
            paused_at.astimezone(tz).date(), resumed_at.astimezone(tz).date()
        )
        local = deadline.astimezone(tz)
        moved = self.calendar.add_working_days(local.date(), lost)
        return datetime.combine(moved, local.timetz())
