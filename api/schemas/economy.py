"""Bodies of the industrial-economy routes. Amounts in 万元, electricity in kWh."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class ImportOut(BaseModel):
    batch_id: int | None = Field(description="null for a dry run")
    rows_total: int
    rows_loaded: int
    enterprises: int
    encoding: str = Field("", description="how the file was read: UTF-8, UTF-8 (with BOM), GBK,"
                                          " UTF-16 or Excel", examples=["GBK"])


class Measures(BaseModel):
    revenue: float = Field(description="营业收入")
    value_added: float = Field(description="工业增加值")
    profit: float = Field(description="利润总额")
    tax: float = Field(description="税金总额")
    electricity_kwh: float


class Growth(BaseModel):
    firms_compared: int = Field(description="firms reporting in both periods (同口径)")
    revenue: float | None
    value_added: float | None
    profit: float | None
    tax: float | None
    electricity_kwh: float | None


class Group(Measures):
    model_config = ConfigDict(extra="allow")  # the grouping key: industry, size, town, ...
    firms: int
    revenue_share: float | None


class Firm(Measures):
    code: str
    name: str
    industry: str
    town: str


class Losses(BaseModel):
    firms: int
    total_loss: float
    list: list[Firm]


class Period(BaseModel):
    start: date
    end: date


class Overview(BaseModel):
    period: Period = Field(description="cumulative from January (累计)")
    firms: int
    totals: Measures
    yoy: Growth
    by_industry: list[Group]
    by_size: list[Group]
    by_ownership: list[Group]
    by_town: list[Group]
    top_by_revenue: list[Firm]
    top_by_profit: list[Firm]
    loss_making: Losses
    metered_firms: int = Field(description="firms whose electricity came from platform meters")


class MeterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: str = Field(max_length=64)
    point: str = Field("energy_kwh", max_length=64, description="a cumulative kWh point")


class Batch(BaseModel):
    id: int
    filename: str
    rows_total: int
    rows_loaded: int
    imported_by: str
    imported_at: datetime
    encoding: str | None = Field(None, description="how the file was read; none before issue 18")
