"""Bodies of the 一本账 routes: catalogue sync and 公共数据资源登记 registrations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RegistrationState = Literal["draft", "applied", "accepted", "reviewed", "publicized", "coded",
                            "rejected"]


class RegistrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"state": "applied"}, {"state": "coded", "registration_code": "GJ-340621-2026-000123"}]})

    state: RegistrationState
    registration_code: str | None = Field(None, min_length=1, max_length=64,
                                          description="赋码: the code the platform assigned")
    note: str = Field("", max_length=2000, description="the platform's remark or reason")


class RegistrationOut(BaseModel):
    resource_code: str
    state: RegistrationState
    applied_at: datetime | None
    accepted_at: datetime | None
    reviewed_at: datetime | None
    publicized_at: datetime | None
    coded_at: datetime | None
    registration_code: str | None
    note: str


class EntryOut(BaseModel):
    code: str
    name: str
    provider_id: str
    provider_name: str
    system_name: str | None
    row_count: int | None
    update_cycle: str
    sharing_type: str
    sharing_conditions: str
    quality_score: float | None
    sensitivity: int | None
    state: RegistrationState
    registration_code: str | None


class SyncedOut(BaseModel):
    dataset: str
    resource_code: str
    outcome: str = Field(description="created, updated, same, or failed: <why>")
