"""Bodies of the data-service routes (数据服务) and the service registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RowsOut(BaseModel):
    dataset: str
    fields: list[str]
    masked: dict[str, str] = Field(description="field -> the mask applied (id_card, phone,"
                                               " name, full)")
    rows: list[dict[str, Any]]
    next: str | None = Field(description="pass as ?after= for the next page; null at the end")


class ScopeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "fields": ["uscc", "name", "address", "legal_person"],
        "unmasked_fields": ["name"],
        "row_scope": {"address": {"prefix": ["濉溪镇"]}}}]})

    fields: list[str] | None = Field(None, max_length=500,
                                     description="the granted fields; null: every field")
    unmasked_fields: list[str] = Field(default_factory=list, max_length=500,
                                       description="granted fields served in the clear")
    row_scope: dict[str, dict[str, list[str | int | float | bool]]] = Field(
        default_factory=dict, description='{"<field>": {"in": [...]} or {"prefix": [...]}}')


class ScopeOut(BaseModel):
    id: int
    resource_code: str
    fields: list[str] | None
    unmasked_fields: list[str]
    row_scope: dict[str, Any]


class ServiceOut(BaseModel):
    kind: str = Field(description="dataset, resource or api: one list of entries of a kind")
    id: str
    name: str
    path: str
    provider_id: str | None
    calls_1d: int
    calls_7d: int
    refused_7d: int
    consumers_30d: int
    grants: int = Field(description="live grants (subscriptions) on the service's resource")
    last_call_at: datetime | None
