"""Response bodies of the event-analysis routes (从管到防)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel


class HotspotOut(BaseModel):
    by: Literal["grid", "community", "town"]
    area: str
    area_name: str | None
    category: str
    current: int
    expected: float
    p_value: float
    q_value: float


class RecurringOut(BaseModel):
    category: str
    category_name: str
    events: int
    first_at: datetime
    last_at: datetime
    latitude: float
    longitude: float
    grids: list[str]
    event_ids: list[int]
    weekly: list[int]
    trend: Literal["rising", "steady", "falling"]


class WeekCount(BaseModel):
    week: date
    count: float


class WeekForecast(BaseModel):
    week: date
    mean: float
    lower: float
    upper: float


class ForecastOut(BaseModel):
    category: str
    model: str
    level: float
    history: list[WeekCount]
    forecast: list[WeekForecast]


class AccuracyOut(BaseModel):
    category: str
    weeks: int
    mae: float | None
    naive_mae: float | None
    coverage: float | None


class DepartmentWeekOut(BaseModel):
    department: str
    week: date
    dispatched: int
    disposed: int
    disposed_on_time: int
    closed: int
    reworked: int
    on_time_rate: float | None
    closure_rate: float | None
    rework_rate: float | None


class MergeSuggestionOut(BaseModel):
    id: int
    event_id: int
    duplicate_of: int
    distance_m: float | None
    hours_apart: float
    state: Literal["pending", "accepted", "refused", "obsolete"]
    created_at: datetime
    category_code: str | None = None
    description: str | None = None
    duplicate_description: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
