"""Bodies of the catalogue and portal routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SharingType = Literal["unconditional", "conditional", "not_shared"]
UpdateCycle = Literal["realtime", "hourly", "daily", "weekly", "monthly", "quarterly", "yearly",
                      "irregular"]


class DataItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="信息项名称")
    type: str = Field(min_length=1, max_length=40, description="数据类型")
    # a governed dataset's fields carry these too (datafoundation/catalogue/governed.py)
    title: str | None = Field(None, max_length=100, description="中文名称")
    element_id: str | None = Field(None, max_length=64, description="数据元标识符")
    sensitivity: int | None = Field(None, ge=0, le=3, description="敏感级别 0-3")


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "classification": "2.03.001", "name": "城区排水管网档案", "provider_id": "water-bureau",
        "summary": "排水管网的位置、管径与养护记录", "format": "xlsx",
        "items": [{"name": "管段编号", "type": "text"}, {"name": "管径mm", "type": "integer"}],
        "sharing_type": "conditional", "sharing_conditions": "仅用于防汛调度",
        "update_cycle": "monthly", "published_on": "2026-11-01"}]})

    classification: str = Field(pattern=r"^[1-9](\.[0-9]{2}(\.[0-9]{3}(\.[0-9A-Za-z]{1,8})?)?)?$",
                                description="信息资源分类: 类.项.目.细目")
    name: str = Field(min_length=1, max_length=200)
    provider_id: str = Field(max_length=64, description="信息资源提供方 (department id)")
    summary: str = Field("", max_length=4000)
    format: str = Field(min_length=1, max_length=40)
    items: list[DataItem] = Field(default_factory=list, max_length=500)
    sharing_type: SharingType
    sharing_conditions: str = Field("", max_length=2000,
                                    description="conditions, or the basis for not sharing")
    open_to_public: bool = False
    update_cycle: UpdateCycle
    published_on: date
    related: list[str] = Field(default_factory=list, max_length=50)


class ResourceOut(BaseModel):
    code: str
    classification: str
    name: str
    provider_id: str
    provider_name: str
    summary: str
    format: str
    items: list[DataItem]
    sharing_type: SharingType
    sharing_conditions: str
    open_to_public: bool
    update_cycle: UpdateCycle
    published_on: date
    related: list[str]
    source_kind: str
    system_id: int | None = None  # 数据来源, for a governed dataset's entry
    row_count: int | None = None
    quality_score: float | None = None
    source_ref: str | None
    live_grants: int | None = None
    requests: int | None = None
    updated_at: datetime | None = Field(None, description="send back as expected_updated_at"
                                                          " when editing")


class ResourceEdit(ResourceIn):
    """The whole description again; classification and provider stay as registered."""
    expected_updated_at: datetime | None = Field(
        None, description="the updated_at read; 409 when someone changed the entry since")


class Classification(BaseModel):
    level: int
    prefix: str
    resources: int


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    application: str = Field(max_length=41, examples=["flood-dispatch"],
                             description="the application that will call (its API key)")
    purpose: str = Field(min_length=1, max_length=2000, description="用途")
    scenario: str = Field("", max_length=2000, description="应用场景")
    days: int = Field(90, ge=1, le=730, description="how long access is needed")


class RequestOut(BaseModel):
    id: int
    resource_code: str
    resource_name: str
    provider_id: str
    applicant: str
    applicant_department: str | None
    application: str
    purpose: str
    scenario: str
    days: int
    state: Literal["with_provider", "granted", "refused"]
    submitted_at: datetime
    check_due_at: datetime
    checked_at: datetime
    check_result: str
    provider_due_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    grant_id: int | None
    overdue: bool = Field(description="awaiting the provider past its time limit")


class Applied(BaseModel):
    request: RequestOut
    key: str | None = Field(None, description="a new API key, shown once, when granted at once")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=2000, description="required when refusing")


class ApproveIn(DecisionIn):
    """The provider's approval: for how long (at most the days asked) and, for a resource
    with a governed dataset behind it, which fields and rows (as PUT .../grants/{id}/scope)."""
    days: int | None = Field(None, ge=1, le=730, description="the grant's term; default: asked")
    fields: list[str] | None = Field(None, max_length=500,
                                     description="the granted fields; null: every field")
    unmasked_fields: list[str] = Field(default_factory=list, max_length=500)
    row_scope: dict[str, dict[str, list[str | int | float | bool]]] = Field(
        default_factory=dict, description='{"<field>": {"in": [...]} or {"prefix": [...]}}')

    def scoped(self) -> bool:
        return self.fields is not None or bool(self.unmasked_fields) or bool(self.row_scope)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class KeyOut(BaseModel):
    key: str = Field(description="shown once: send it as X-API-Key")


class GrantOut(BaseModel):
    id: int
    resource_code: str
    provider_id: str
    request_id: int
    grantee: str
    application: str
    api_key_id: int
    key_issued: bool
    key_delivered_at: datetime | None
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str | None


class Revoked(BaseModel):
    grant: GrantOut
    key_revoked: bool


class DataOut(BaseModel):
    resource: str
    columns: list[str]
    rows: list[dict]


class DeskOut(BaseModel):
    """Who the 部门工作台 is for: the caller's department (None for a county-wide admin)."""
    username: str
    department_id: str | None
    department_name: str | None
    waiting_requests: int = Field(description="data requests awaiting this department")
    overdue_requests: int = Field(description="of those, past the provider's time limit")
