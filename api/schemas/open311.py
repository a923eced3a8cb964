"""Open311 GeoReport v2 bodies (field names as the specification spells them)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = False
    type: Literal["realtime", "batch", "blackbox"] = "realtime"
    keywords: str = ""
    group: str


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[dict] = Field(default_factory=list)


class RequestCreated(BaseModel):
    service_request_id: str
    service_notice: str = ""
    account_id: str | None = None


class ServiceRequest(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str = ""
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str
    address_id: str = ""
    zipcode: str = ""
    lat: float | None
    long: float | None
    media_url: str = ""
