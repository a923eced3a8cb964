"""Bodies of the evaluation routes (城市综合管理服务评价, GB/T 30428.4 rates per place)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.events import Rates


class ItemOut(BaseModel):
    code: str
    level1: str
    name: str
    weight: float
    source: Literal["events", "manual"]
    rate_weight: float
    categories: list[str]


class FrameworkOut(BaseModel):
    code: str
    name: str
    ranking_allowed: bool
    history_periods: int
    items: list[ItemOut]


class ItemScore(BaseModel):
    model_config = ConfigDict(extra="allow")  # events or manual details (scores.py)
    code: str
    level1: str
    name: str
    weight: float
    source: str
    score: float | None


class PeriodScore(BaseModel):
    period: date
    total: float | None
    coverage: float
    change: float | None
    items: list[ItemScore]


class PlaceOut(BaseModel):
    framework: str
    by: Literal["county", "town", "grid"]
    area: str
    periods: list[PeriodScore]


class PlaceTotal(BaseModel):
    area: str
    period: date
    total: float | None
    previous_total: float | None
    change: float | None


class ScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: str = Field(max_length=64)
    period: date = Field(description="any day of the month")
    area: str = Field("", max_length=64, description="'' the county, else a town or grid code")
    kind: Literal["field", "survey"] = Field(description="实地考察 or 问卷")
    score: float = Field(ge=0, le=100)


class ScoreOut(BaseModel):
    framework: str
    item: str
    period: date
    area: str
    kind: str
    score: float
    entered_by: str
    entered_at: datetime


class _ByArea(BaseModel):
    area: str


class AreaRates(Rates, _ByArea):  # the key first (see Evaluation)
    pass
