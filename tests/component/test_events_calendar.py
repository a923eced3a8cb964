"""The working calendar and the event clocks (pure logic, fixed dates in 2026)."""

import logging
from datetime import date, datetime

from cityevents import clock
from cityevents.calendar import COUNTY_TZ, WorkCalendar, traffic_light

CAL = WorkCalendar()
HOUR = 3600


def cst(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=COUNTY_TZ)


def test_library_knows_2026_holidays_and_adjusted_days() -> None:
    assert not CAL.is_workday(date(2026, 10, 1))  # National Day
    assert not CAL.is_workday(date(2026, 9, 25))  # Mid-autumn, a Friday
    assert CAL.is_workday(date(2026, 10, 10))  # adjusted working Saturday
    assert CAL.is_workday(date(2026, 9, 20))  # adjusted working Sunday
    assert not CAL.is_workday(date(2026, 11, 21))  # an ordinary Saturday
    assert CAL.day_s == 7.5 * HOUR


def test_working_hours_skip_the_weekend() -> None:
    # Friday 16:30 + 4 working hours: 1 h on Friday, 3 h on Monday morning
    end = CAL.add_work_seconds(cst(2026, 11, 20, 16, 30), 4 * HOUR)
    assert end == cst(2026, 11, 23, 11, 30)
    assert CAL.work_seconds_between(cst(2026, 11, 20, 16, 30), end) == 4 * HOUR


def test_working_hours_skip_lunch() -> None:
    assert CAL.add_work_seconds(cst(2026, 11, 23, 11, 0), 2 * HOUR) == cst(2026, 11, 23, 14, 30)


def test_working_days_cross_national_day_and_land_on_the_adjusted_saturday() -> None:
    start = cst(2026, 9, 30, 10, 0)
    one = CAL.deadline(start, CAL.limit_seconds(1, "work_days"), "work_days")
    assert one == cst(2026, 10, 8, 10, 0)
    three = CAL.deadline(start, CAL.limit_seconds(3, "work_days"), "work_days")
    assert three == cst(2026, 10, 10, 10, 0)  # Saturday, a working day this year
    five = CAL.deadline(start, CAL.limit_seconds(5, "work_days"), "work_days")
    assert five == cst(2026, 10, 13, 10, 0)  # Sunday 11th is off again
    assert CAL.work_seconds_between(cst(2026, 10, 1), cst(2026, 10, 8)) == 0


def test_natural_hours_ignore_the_calendar() -> None:
    start = cst(2026, 10, 1, 22, 0)
    assert CAL.deadline(start, CAL.limit_seconds(4, "hours"), "hours") == cst(2026, 10, 2, 2, 0)


def test_an_unknown_year_falls_back_to_weekdays_and_configured_holidays(caplog) -> None:
    cal = WorkCalendar(extra_holidays=[date(2027, 1, 1)], extra_workdays=[date(2027, 1, 9)])
    assert not cal.knows_year(2027)
    with caplog.at_level(logging.WARNING):
        end = cal.deadline(cst(2026, 12, 31, 10, 0), cal.day_s, "work_days")
        assert cal.is_workday(date(2027, 1, 9))  # a configured working Saturday
        assert not cal.is_workday(date(2027, 1, 10))
    assert end == cst(2027, 1, 4, 10, 0)  # 1 Jan configured, then the weekend
    warnings = [r for r in caplog.records if "does not know 2027" in r.getMessage()]
    assert len(warnings) == 1


def test_traffic_light_thresholds() -> None:
    assert traffic_light(79, 100) == "green"
    assert traffic_light(80, 100) == "yellow"
    assert traffic_light(100, 100) == "yellow"
    assert traffic_light(101, 100) == "red"


def _event(**over) -> dict:
    limits = {"dispose": (4.0, "work_hours"), "total": (1.0, "work_days")}
    start = cst(2026, 11, 23, 9, 0)
    row = {"state": "processing", "suspended_at": None,
           **clock.start_step(CAL, limits, "dispose", start),
           **clock.start_total(CAL, limits, start)}
    return row | over


def test_light_moves_with_working_time() -> None:
    event = _event()
    assert event["step_deadline_at"] == cst(2026, 11, 23, 14, 30)
    assert clock.view(CAL, event, cst(2026, 11, 23, 11, 0)).step_light == "green"
    assert clock.view(CAL, event, cst(2026, 11, 23, 13, 45)).step_light == "yellow"
    assert clock.view(CAL, event, cst(2026, 11, 23, 14, 30)).step_light == "yellow"
    late = clock.view(CAL, event, cst(2026, 11, 23, 15, 0))
    assert late.step_light == "red" and late.light == "red"


def test_suspension_stops_the_clock_and_extension_moves_it() -> None:
    event = _event(suspended_at=cst(2026, 11, 23, 10, 0))
    # a suspended clock stands still: one hour used, whatever the time
    assert clock.view(CAL, event, cst(2026, 11, 27, 10, 0)).step_used_share == 0.25
    moved = clock.resume(CAL, event, cst(2026, 11, 24, 10, 0))  # one working day later
    assert moved["step_deadline_at"] == cst(2026, 11, 24, 14, 30)
    extended = clock.extend(CAL, _event(), 1, "work_days")
    assert extended["step_deadline_at"] == cst(2026, 11, 24, 14, 30)
    assert extended["step_limit_s"] == 4 * HOUR + CAL.day_s
