"""The data panorama (数据全景) dashboard."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class ScorePoint(BaseModel):
    day: date
    score: float | None


class PanoramaTotals(BaseModel):
    systems: int
    datasets: int
    structured_rows: int
    rows_yesterday: int
    objects: int
    object_bytes: int
    objects_yesterday: int
    quality_score: float | None
    dataset_calls_30d: int


class UnitRow(BaseModel):
    department_id: str
    name: str
    systems: int
    datasets: int
    structured_rows: int
    rows_yesterday: int
    objects: int
    object_bytes: int
    objects_yesterday: int
    quality_score: float | None


class DatasetRow(BaseModel):
    id: str
    name: str
    layer: str
    department_id: str
    department_name: str
    system_name: str | None
    resource_code: str | None
    rows: int | None
    rows_yesterday: int
    quality_score: float | None
    quality_trend: list[ScorePoint]
    calls_30d: int
    consumers_30d: int
    grants: int


class SyncHealth(BaseModel):
    sync_id: int
    system: str
    department_id: str
    source: str
    object: str
    target_table: str
    enabled: bool
    flagged: str | None
    last_state: str | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    lag_s: int | None
    failures_7d: int
    last_error: str | None


class LayerProduction(BaseModel):
    layer: str
    runs: int
    failed: int
    rows_in: int
    rows_out: int
    rows_quarantined: int


class Panorama(BaseModel):
    as_of: datetime
    day: date
    totals: PanoramaTotals
    units: list[UnitRow]
    datasets: list[DatasetRow]
    quality_trend: list[ScorePoint]
    syncs: list[SyncHealth]
    production: list[LayerProduction]
