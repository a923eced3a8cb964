"""Working time on the county's calendar.

Public holidays and adjusted working days (调休) come from the `chinesecalendar` library, which
follows the State Council's yearly notice. A release only knows the years announced before it;
for a later year we fall back to Monday-Friday plus the dates configured in settings
(`CITYOPS_CALENDAR_EXTRA_HOLIDAYS` / `CITYOPS_CALENDAR_EXTRA_WORKDAYS`) and log that once per
year, so a stale library shows up in the logs rather than as silently wrong deadlines.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from cityops.errors import InvalidInput

log = logging.getLogger(__name__)
COUNTY_TZ = ZoneInfo("Asia/Shanghai")
# the county offices' hours: 08:30-12:00 and 13:30-17:30, 7.5 working hours a day
WORK_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)),
)
UNITS = ("work_hours", "work_days", "hours")
_MAX_DAYS = 3700  # ten years: a guard against a limit that never ends


def now_utc() -> datetime:
    """The clock routes depend on; tests override it to run deadlines on fixed dates."""
    return datetime.now(UTC)


class WorkCalendar:
    def __init__(
        self,
        extra_holidays: Iterable[date] = (),
        extra_workdays: Iterable[date] = (),
        periods: tuple[tuple[time, time], ...] = WORK_PERIODS,
        tz: ZoneInfo = COUNTY_TZ,
    ) -> None:
        self.extra_holidays = frozenset(extra_holidays)
        self.extra_workdays = frozenset(extra_workdays)
        self.periods = periods
        self.tz = tz
        self.day_s = sum(_seconds(b) - _seconds(a) for a, b in periods)
        self._unknown_years: set[int] = set()

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            if day.year not in self._unknown_years:
                self._unknown_years.add(day.year)
                log.warning(
                    "chinesecalendar does not know %d: counting Monday-Friday plus the"
                    " configured extra holidays/workdays; upgrade chinesecalendar", day.year,
                )
            return day.weekday() < 5

    def knows_year(self, year: int) -> bool:
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
            return True
        except NotImplementedError:
            return False

    def _day_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_workday(day):
            return []
        return [
            (datetime.combine(day, a, self.tz), datetime.combine(day, b, self.tz))
            for a, b in self.periods
        ]

    def work_seconds_between(self, start: datetime, end: datetime) -> float:
        """Working seconds from start to end; negative when end is before start."""
        if end < start:
            return -self.work_seconds_between(end, start)
        total = 0.0
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            for a, b in self._day_spans(day):
                lo, hi = max(a, start), min(b, end)
                if hi > lo:
                    total += (hi - lo).total_seconds()
            day += timedelta(days=1)
        return total

    def add_work_seconds(self, start: datetime, seconds: float) -> datetime:
        """The moment `seconds` of working time after start (never before start)."""
        if seconds <= 0:
            return start
        left = seconds
        day = start.astimezone(self.tz).date()
        for _ in range(_MAX_DAYS):
            for a, b in self._day_spans(day):
                lo = max(a, start)
                if b <= lo:
                    continue
                span = (b - lo).total_seconds()
                if left <= span:
                    return (lo + timedelta(seconds=left)).astimezone(UTC)
                left -= span
            day += timedelta(days=1)
        raise InvalidInput(f"a time limit of {seconds} working seconds ends too far ahead")

    # --- limits in any unit -------------------------------------------------------------

    def limit_seconds(self, amount: float, unit: str) -> float:
        """A limit in its unit's seconds: working seconds for work units, real ones for hours."""
        if unit == "work_days":
            return amount * self.day_s
        if unit in ("work_hours", "hours"):
            return amount * 3600
        raise InvalidInput(f"unknown time-limit unit {unit!r}: use one of {', '.join(UNITS)}")

    def deadline(self, start: datetime, seconds: float, unit: str) -> datetime:
        if unit == "hours":
            return start + timedelta(seconds=seconds)
        return self.add_work_seconds(start, seconds)

    def seconds_between(self, start: datetime, end: datetime, unit: str) -> float:
        if unit == "hours":
            return (end - start).total_seconds()
        return self.work_seconds_between(start, end)


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def traffic_light(used_s: float, limit_s: float) -> str:
    """green below 80 % of the limit, yellow up to 100 %, red beyond."""
    if limit_s <= 0:
        return "red"
    share = used_s / limit_s
    if share < 0.8:
        return "green"
    return "yellow" if share <= 1.0 else "red"
