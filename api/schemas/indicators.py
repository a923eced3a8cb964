"""Bodies of the indicator routes (指标体系)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from indicators.model import IndicatorDef

Light = Literal["excellent", "green", "yellow", "red", "none"]


class IndicatorIn(IndicatorDef):
    """A definition as PUT: the code comes from the path and must match."""


class IndicatorClass(BaseModel):
    code: str
    name: str
    parent: str | None


class IndicatorRow(BaseModel):
    code: str
    name: str
    class_code: str
    class_name: str
    unit: str
    frequency: str
    direction: Literal["up", "down"]
    warning: float | None
    alarm: float | None
    excellence: float | None
    target: float | None
    owner_department: str | None
    breakdown: str
    enabled: bool
    period_start: datetime | None
    value: float | None
    light: Light | None
    last_status: Literal["ok", "failed"] | None
    last_error: str | None


class IndicatorOut(IndicatorDef):
    version: int
    updated_by: str
    updated_at: datetime


class Point(BaseModel):
    period_start: datetime
    value: float
    light: Light
    mom: float | None  # 环比, %
    yoy: float | None  # 同比, %


class Failed(BaseModel):
    period_start: datetime
    error: str | None


class Series(BaseModel):
    indicator: IndicatorOut
    dimension: str
    points: list[Point]
    failed: list[Failed]
    trend: Literal["rising", "flat", "falling"] | None


class DimensionValue(BaseModel):
    dimension: str
    value: float
    light: Light


class Computed(BaseModel):
    periods: int
    failed: list[Failed]


class IndicatorAlarm(BaseModel):
    id: int
    indicator_code: str
    dimension: str
    severity: Literal["major", "warning"]
    state: Literal["active", "acknowledged", "cleared"]
    message: str
    value: float
    period_start: datetime
    count: int
    event_id: int | None
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    cleared_by: str | None


class HubEntry(BaseModel):
    kind: Literal["indicator", "api"]
    id: str
    name: str
    owner: str | None
    detail: str
    calls_30d: int | None


class ClassState(BaseModel):
    code: str
    name: str
    state: Literal["green", "yellow", "red", "none"]
    indicators: int
    excellent: int
    green: int
    yellow: int
    red: int
    none: int
    failed: int


class Change(BaseModel):
    code: str
    name: str
    unit: str
    value: float
    previous: float
    change_pct: float | None
    light: Light
    previous_light: Light


class RedEvent(BaseModel):
    id: int
    category_code: str
    category_name: str
    description: str
    state: str
    department_id: str | None
    total_deadline_at: datetime | None
    supervised: bool


class Spike(BaseModel):
    category: str
    week: date
    mean: float
    upper: float
    recent_mean: float


class CockpitOut(BaseModel):
    classes: list[ClassState]
    changes: list[Change]
    red_indicators: list[IndicatorRow]
    failed_indicators: list[IndicatorRow]
    red_events: list[RedEvent]
    forecast_spikes: list[Spike]


class ReportIn(BaseModel):
    kind: Literal["monthly", "weekly"]
    period: date  # any day of the month or week


class ReportOut(BaseModel):
    id: int
    kind: Literal["monthly", "weekly"]
    period_start: datetime
    period_end: datetime
    title: str
    created_by: str
    created_at: datetime
    generated_at: datetime
    pdf_bytes: int
