"""Bodies of the dashboard routes (figures defined in docs/city-operations.md)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class Volumes(BaseModel):
    structured_rows: int = Field(description="readings + events + enterprise indicator rows")
    readings: int
    events: int
    enterprise_rows: int
    objects: int = Field(description="unstructured objects (documents, photos, scans)")
    object_bytes: int


class DepartmentVolume(BaseModel):
    department_id: str
    name: str
    readings: int
    readings_yesterday: int
    objects: int
    object_bytes: int
    objects_yesterday: int


class QualityCounts(BaseModel):
    readings: int = Field(description="readings stamped in the day")
    good: int
    uncertain: int
    bad: int
    out_of_range: int = Field(description="outside the range its profile declares")
    accepted_share: float | None = Field(description="good / readings")
    out_of_range_share: float | None
    bad_share: float | None


class DepartmentQuality(QualityCounts):
    department_id: str | None


class Quality(QualityCounts):
    accepted_messages: int = Field(description="telemetry batches stored in the day")
    dead_letters: int = Field(description="messages dead-lettered in the day")
    dead_letter_share: float | None = Field(description="dead_letters / all messages")
    late: int = Field(description="readings stamped over 5 min before their commit")
    arrived_readings: int = Field(description="readings stored in the day's batches")
    late_share: float | None = Field(description="late / arrived_readings")
    late_note: str
    departments: list[DepartmentQuality]


class IngestionDashboard(BaseModel):
    as_of: datetime
    day: date = Field(description="the county day of the increment and quality (Asia/Shanghai)")
    totals: Volumes
    yesterday: Volumes
    departments: list[DepartmentVolume]
    quality: Quality


class Calls(BaseModel):
    calls: int
    succeeded: int
    failed: int


class PopularService(BaseModel):
    service: str = Field(description="METHOD /route-template")
    calls: int
    succeeded: int
    percentile: float


class ApplicationCalls(BaseModel):
    application: str = Field(description="the API key's name")
    calls: int
    succeeded: int


class ResourceUse(BaseModel):
    code: str
    name: str
    provider_id: str
    grants: int = Field(description="subscriptions ever granted")
    live_grants: int
    calls: int
    refused_calls: int


class Portal(BaseModel):
    requests: int
    awaiting_provider: int
    granted: int
    refused: int
    overdue: int
    answered_in_time: int
    median_reply_hours: float | None


class ServicesDashboard(BaseModel):
    as_of: datetime
    calls: Calls
    popular: dict[str, list[PopularService]] = Field(description="keys 1d, 7d, 30d")
    applications: list[ApplicationCalls] = Field(description="the last 30 days")
    resources: list[ResourceUse]
    portal: Portal
