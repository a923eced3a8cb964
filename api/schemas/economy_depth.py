"""Bodies of the industrial economy's in-depth routes (series, 规上 set, power, 亩均)."""

from __future__ import annotations

from pydantic import BaseModel


class SeriesPeriod(BaseModel):
    period: str  # "01-02" (published together), "03" ... "12"
    month: float
    cumulative: float
    same_basis_last_year: float
    month_growth: float | None
    cumulative_growth: float | None


class SeriesOut(BaseModel):
    measure: str
    year: int
    basis: str  # "scale_set": the year's 规上 set; "reporting": the firms reporting
    firms: int
    periods: list[SeriesPeriod]


class ScaleSetOut(BaseModel):
    year: int
    revenue_min: float
    firms: list[str]


class PowerWarning(BaseModel):
    code: str
    name: str
    town: str
    industry: str
    electricity_growth: float | None
    value_added_growth: float | None
    gap_pp: float | None
    colour: str | None
    metered_months: int
    note: str


class MuScore(BaseModel):
    code: str
    name: str
    town: str
    industry: str
    mu: float
    per_mu: dict[str, float]
    score: float


class ColourGroup(BaseModel):
    group: str  # a town (or park) or an industry
    green: int
    blue: int
    orange: int
    red: int
    none: int


class MuGroup(BaseModel):
    group: str
    firms: int
    mu: float
    mean_score: float
    per_mu: dict[str, float]
