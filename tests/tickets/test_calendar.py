"""Working days with PRC holidays and 调休, and deadlines computed from them."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.tickets import calendar
from bot.tickets.calendar import UnknownYear, WorkCalendar
from bot.tickets.sla import SlaPolicy
from tests.tickets.conftest import SHANGHAI

CAL = WorkCalendar.load()


def test_2026_holidays_and_make_up_days() -> None:
    assert not CAL.is_working_day(date(2026, 10, 1))  # 国庆节
    assert not CAL.is_working_day(date(2026, 2, 16))  # 春节 (a Monday)
    assert CAL.is_working_day(date(2026, 2, 14))  # Saturday, 春节调休上班
    assert CAL.is_working_day(date(2026, 10, 10))  # Saturday, 国庆调休上班
    assert CAL.is_working_day(date(2026, 1, 4))  # Sunday, 元旦调休上班
    assert not CAL.is_working_day(date(2026, 6, 19))  # 端午节 (a Friday)
    assert not CAL.is_working_day(date(2026, 11, 28))  # ordinary Saturday
    assert CAL.is_working_day(date(2026, 11, 27))  # ordinary Friday


def test_adding_working_days_skips_the_national_day_week() -> None:
    # Wed 30 Sep + 3 working days: Thu 8, Fri 9, Sat 10 Oct (调休)
    assert CAL.add_working_days(date(2026, 9, 30), 3) == date(2026, 10, 10)
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 10)) == 3


def test_configurable_calendar() -> None:
    cal = WorkCalendar.of(holidays=[date(2030, 1, 2)], workdays=[date(2030, 1, 5)])
    assert cal.add_working_days(date(2030, 1, 1), 2) == date(2030, 1, 4)
    assert cal.add_working_days(date(2030, 1, 4), 1) == date(2030, 1, 5)


def test_deadlines_per_class() -> None:
    policy = SlaPolicy.load()
    received = datetime(2026, 9, 30, 15, 0, tzinfo=SHANGHAI)
    inquiry = policy.deadline("inquiry", received)
    assert inquiry == datetime.combine(date(2026, 10, 10), time(17, 30), tzinfo=SHANGHAI)
    assert policy.deadline("emergency", received) == datetime(2026, 10, 1, 15, 0, tzinfo=SHANGHAI)
    # complaint over the Spring Festival: Fri 13 Feb + 10 working days
    spring = policy.deadline("complaint", datetime(2026, 2, 13, 9, 0, tzinfo=SHANGHAI))
    assert spring.date() == date(2026, 3, 5)  # 14 Feb and 28 Feb are 调休 workdays


def test_stricter_class_wins() -> None:
    policy = SlaPolicy.load()
    assert policy.class_for("inquiry", "complaint") == "inquiry"
    assert policy.class_for("complaint", "complaint") == "complaint"
    assert policy.class_for("complaint", "emergency") == "emergency"
    assert policy.class_for("report", None) == "complaint"


def test_pause_moves_the_deadline_by_the_working_days_lost() -> None:
    policy = SlaPolicy.load()
    deadline = datetime(2026, 12, 11, 17, 30, tzinfo=SHANGHAI)
    paused = datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI)  # Friday
    resumed = datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI)  # Tuesday: Mon + Tue lost
    moved = policy.extend_for_pause("complaint", deadline, paused, resumed)
    assert moved == datetime(2026, 12, 15, 17, 30, tzinfo=SHANGHAI)
    same_day = policy.extend_for_pause("complaint", deadline, paused, paused.replace(hour=16))
    assert same_day == deadline


def test_every_day_agrees_with_the_chinesecalendar_package() -> None:
    """Our list against a maintained one, for every year both know: a typo in a date
    (a holiday a day off, a 调休 Saturday forgotten) would move citizens' deadlines."""
    import chinese_calendar

    checked = 0
    for year in sorted(CAL.years):
        day = date(year, 1, 1)
        while day.year == year:
            try:
                theirs = chinese_calendar.is_workday(day)
            except NotImplementedError:  # a year the package does not know yet
                break
            assert CAL.is_working_day(day) == theirs, day
            checked += 1
            day += timedelta(days=1)
    assert checked >= 365 * 2  # 2025 and 2026 at least


def test_a_year_the_calendar_does_not_know_is_an_error_not_monday_to_friday() -> None:
    unknown = max(CAL.years) + 1
    with pytest.raises(UnknownYear, match=str(unknown)):
        CAL.is_working_day(date(unknown, 1, 4))
    with pytest.raises(UnknownYear):
        CAL.add_working_days(date(max(CAL.years), 12, 28), 10)


def test_a_deadline_into_an_unknown_year_is_set_and_the_missing_year_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ticket filed in late December still gets a deadline; the log says which year to add."""
    unknown = max(CAL.years) + 1
    policy = SlaPolicy.load(calendar=CAL.weekdays_where_unknown())
    calendar._log_unknown.cache_clear()  # logged once per process: this test must see it
    received = datetime(unknown - 1, 12, 28, 10, 0, tzinfo=SHANGHAI)
    with caplog.at_level(logging.ERROR, logger="bot.tickets.calendar"):
        deadline = policy.deadline("complaint", received)
    assert deadline.year == unknown
    assert any(str(unknown) in record.getMessage() for record in caplog.records)


def test_the_calendar_knows_the_current_year() -> None:
    """Fails on the first day of a year nobody entered: add the State Council's list."""
    assert CAL.knows(date.today().year), "data/tickets/calendar.yml: add this year's holidays"


def test_a_calendar_file_listing_days_outside_its_years_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yml"
    path.write_text("years: [2026]\nholidays:\n  - {from: 2027-01-01, name: 元旦}\n")
    with pytest.raises(ValueError, match="2027"):
        WorkCalendar.load(path)
