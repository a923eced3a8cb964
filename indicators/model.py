"""An indicator's definition, validated before it is stored: thresholds in the direction the
indicator reads (higher or lower is better), within its unit's range, and a query that reads
only the metrics views (indicators/guard.py)."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityops.errors import InvalidInput
from indicators.guard import check_query

Frequency = Literal["hourly", "daily", "weekly", "monthly"]
Breakdown = Literal["none", "town", "department", "grid", "category", "industry"]
# units and the range a value in them can take: a percentage threshold of 120 is a mistake
UNITS: dict[str, tuple[float, float] | None] = {
    "%": (0, 100), "增长%": (None, None), "‰": (0, 1000), "分": (0, 100), "个": (0, None),
    "件": (0, None),
    "次": (0, None), "条": (0, None), "台": (0, None), "家": (0, None), "处": (0, None),
    "万元": (None, None), "亿元": (None, None), "kWh": (0, None), "万kWh": (0, None),
    "h": (0, None), "d": (0, None), "min": (0, None), "s": (0, None), "m": (None, None),
    "℃": (None, None), "元/亩": (None, None), "万元/亩": (None, None), "rows": (0, None),
}
CODE = re.compile(r"^[A-Z][A-Z0-9]{0,3}(\.[0-9]{2}){0,3}\.[0-9]{3}$")


class IndicatorDef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=CODE.pattern, examples=["YX.01.001"])
    name: str = Field(min_length=1, max_length=100)
    class_code: str = Field(max_length=20)
    definition: str = Field(min_length=1, max_length=2000)
    caliber: str = Field("", max_length=2000)
    query: str = Field(min_length=1, max_length=20000)
    breakdown: Breakdown = "none"
    unit: str
    frequency: Frequency
    owner_department: str | None = None
    direction: Literal["up", "down"]
    warning: float | None = None
    alarm: float | None = None
    excellence: float | None = None
    target: float | None = None
    open_event_category: str | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _checked(self) -> IndicatorDef:
        check_thresholds(self)
        check_query(self.query)
        return self


def check_thresholds(ind: IndicatorDef) -> None:
    if ind.unit not in UNITS:
        raise InvalidInput(f"indicator {ind.code}: unit {ind.unit!r} is not one of"
                           f" {', '.join(UNITS)}")
    low, high = UNITS[ind.unit] or (None, None)
    named = {"alarm": ind.alarm, "warning": ind.warning, "excellence": ind.excellence,
             "target": ind.target}
    for name, value in named.items():
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidInput(f"indicator {ind.code}: {name} {value} is outside the range of"
                               f" unit {ind.unit} ({low} to {high})")
    # in reading order from worst to best: up means alarm <= warning <= excellence
    order = [(n, v) for n, v in (("alarm", ind.alarm), ("warning", ind.warning),
                                  ("excellence", ind.excellence)) if v is not None]
    for (n1, v1), (n2, v2) in itertools.pairwise(order):
        worse_first = v1 <= v2 if ind.direction == "up" else v1 >= v2
        if not worse_first:
            better = "higher" if ind.direction == "up" else "lower"
            raise InvalidInput(f"indicator {ind.code}: {n1} {v1} and {n2} {v2} are in the wrong"
                               f" direction for an indicator where {better} is better")


def light(ind: dict, value: float) -> str:
    """excellent, green, yellow or red against the thresholds; none without any."""
    up = ind["direction"] == "up"
    worse = (lambda v, t: v < t) if up else (lambda v, t: v > t)
    if ind["alarm"] is None and ind["warning"] is None and ind["excellence"] is None:
        return "none"
    if ind["alarm"] is not None and worse(value, ind["alarm"]):
        return "red"
    if ind["warning"] is not None and worse(value, ind["warning"]):
        return "yellow"
    if ind["excellence"] is not None and not worse(value, ind["excellence"]):
        return "excellent"
    return "green"


def shift(frequency: str, start: datetime, tz, periods: int = 1) -> datetime:
    """The start `periods` periods after (or before, if negative) `start`, in the county's
    calendar: a month is a calendar month."""
    local = start.astimezone(tz)
    if frequency == "monthly":
        months = local.year * 12 + local.month - 1 + periods
        return local.replace(year=months // 12, month=months % 12 + 1).astimezone(UTC)
    step = {"hourly": timedelta(hours=1), "daily": timedelta(days=1),
            "weekly": timedelta(weeks=1)}[frequency]
    return (local + step * periods).astimezone(UTC)


def period_of(frequency: str, moment: datetime, tz) -> datetime:
    """The start of the period (in the county's time) that contains `moment`."""
    local = moment.astimezone(tz)
    if frequency == "hourly":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if frequency == "weekly":
            start -= timedelta(days=start.weekday())
        elif frequency == "monthly":
            start = start.replace(day=1)
    return start.astimezone(UTC)


def last_complete(frequency: str, now: datetime, tz) -> datetime:
    """The start of the latest period that has ended by `now`."""
    return shift(frequency, period_of(frequency, now, tz), tz, -1)
