"""Response bodies of the readings routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from cityops.wire import Quality


class LatestPoint(BaseModel):
    point: str
    unit: str
    value: bool | int | float | str | None
    time: datetime | None = Field(description="null when the point never reported")
    quality: Quality | None


class DeviceLatest(BaseModel):
    device: str
    points: list[LatestPoint]


class LatestPage(BaseModel):
    items: list[DeviceLatest]
    total: int = Field(description="how many devices match the filters, over all pages")
    limit: int
    next_after: str | None = Field(
        description="pass as `after` for the next page; null on the last page")


class RawReading(BaseModel):
    time: datetime
    value: bool | int | float | str | None
    quality: Quality


class Bucket(BaseModel):
    time: datetime = Field(description="start of the bucket")
    avg: float | None
    min: float | None
    max: float | None
    count: int


class Readings(BaseModel):
    device: str
    point: str
    start: datetime
    end: datetime
    bucket_s: int | None = None
    readings: list[RawReading] | None = None
    buckets: list[Bucket] | None = None


class Health(BaseModel):
    status: str
    checks: dict[str, str]
