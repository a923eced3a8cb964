"""Request and response bodies of the city-event routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["sensor", "hotline", "inspector", "citizen", "system"]
Urgency = Literal["normal", "urgent"]
Unit = Literal["work_hours", "work_days", "hours"]
Light = Literal["green", "yellow", "red"]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel = Field(examples=["hotline"])
    category_code: str = Field(max_length=32, examples=["E01.02"])
    description: str = Field(min_length=1, max_length=4000, examples=["人民路口垃圾堆放"])
    urgency: Urgency = "normal"
    address: str = Field("", max_length=500)
    grid: str = Field("", max_length=64, description="单元网格 code")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    external_ref: str | None = Field(None, max_length=128, examples=["12345-20261123-0042"])
    reporter: str | None = Field(None, max_length=128,
                                 description="who reported it, when not the caller")


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=4000)
    department_id: str | None = Field(None, description="dispatch only: the department")
    attachment_ids: list[int] = Field(default_factory=list, max_length=50,
                                      description="files uploaded to this event beforehand")


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["cancel", "suspend", "extend", "return"]
    note: str = Field(min_length=1, max_length=4000, description="the reason")
    amount: float | None = Field(None, gt=0, description="extend only")
    unit: Unit | None = Field(None, description="extend only")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=4000, description="required when refusing")


class SuperviseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=4000)


class Created(BaseModel):
    id: int


class Clock(BaseModel):
    step: str | None
    step_deadline_at: datetime | None
    step_light: Light | None
    step_used_share: float | None
    total_deadline_at: datetime | None
    total_light: Light | None
    total_used_share: float | None
    tasks_light: Light | None = Field(
        None, description="the worst light of the open co-handling (协办) tasks")
    light: Light | None = Field(description="the worst of the event's and its tasks' lights")


class EventOut(BaseModel):
    id: int
    channel: Channel
    reporter: str
    category_code: str
    category_kind: str
    category_major: str
    category_minor: str
    urgency: Urgency
    description: str
    address: str
    grid: str
    latitude: float | None
    longitude: float | None
    state: str
    department_id: str | None
    supervised: bool
    external_ref: str | None
    alarm_group: str | None
    reported_at: datetime
    updated_at: datetime
    suspended_at: datetime | None
    disposed_at: datetime | None
    disposed_on_time: bool | None
    closed_at: datetime | None
    closed_on_time: bool | None
    rework_count: int
    clock: Clock
    # derived from the point when reported (migration 081, docs/map.md): the dispatcher is
    # offered area_department_id; area_assigned false = outside every grid cell
    town_code: str | None = None
    community_code: str | None = None
    area_department_id: str | None = None
    area_assigned: bool | None = None


class TransitionOut(BaseModel):
    id: int
    action: str
    from_state: str | None
    to_state: str
    actor: str
    actor_role: str
    at: datetime
    note: str
    department_id: str | None
    on_time: bool | None
    detail: dict
    attachment_ids: list[int]


class RequestOut(BaseModel):
    id: int
    kind: str
    state: str
    requested_by: str
    requested_at: datetime
    note: str
    amount: float | None
    unit: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime
    transition_id: int | None
    # an office file's PDF preview (catalogue files): converting, ready or failed (with why)
    preview: Literal["converting", "ready", "failed"] | None = None
    preview_failure: str | None = None


class EventDetail(EventOut):
    transitions: list[TransitionOut]
    requests: list[RequestOut]
    attachments: list[AttachmentOut]


class Category(BaseModel):
    code: str
    kind: str
    major: str
    minor: str
    department_id: str | None
    register_rule: str
    close_rule: str


class TimeLimit(BaseModel):
    category_code: str = Field(description="'*' applies to every category")
    urgency: Urgency
    step: str
    amount: float
    unit: Unit


class Categories(BaseModel):
    categories: list[Category]
    time_limits: list[TimeLimit]


class Rates(BaseModel):
    """GB/T 30428.4's counts and rates of one group of dispatches (docs/city-operations.md)."""

    dispatched: int
    accurate_dispatches: int
    due: int
    disposed: int
    disposed_on_time: int
    closed: int
    closed_on_time: int
    reworked: int
    closure_rate: float | None
    on_time_closure_rate: float | None
    disposal_rate: float | None
    on_time_disposal_rate: float | None
    rework_rate: float | None
    accurate_dispatch_rate: float | None


class _ByDepartment(BaseModel):
    department_id: str


class Evaluation(Rates, _ByDepartment):  # the key first: pydantic orders the bases' fields
    # from the last base on, and the CSV export's columns follow the model's fields
    # co-handling (协办) tasks assigned to the department in the period (docs/city-operations.md)
    co_assigned: int = 0
    co_due: int = 0
    co_disposed: int = 0
    co_disposed_on_time: int = 0
    co_reworked: int = 0
    co_on_time_disposal_rate: float | None = None
    all_on_time_disposal_rate: float | None = Field(
        None, description="按期处置率 over lead and co-handling tasks together")


class Swept(BaseModel):
    supervised: list[int]
    reminded: list[int] = Field(default_factory=list, description="催办 reminders sent (ids)")


class AlarmRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category_code: str = Field(max_length=32, examples=["F01.03"])
    group_by: Literal["device", "site", "rule"] = Field(
        "device", description="one open event per rule and device, site, or rule")
    urgency: Urgency | None = Field(None, description="default: critical alarms are urgent")
    enabled: bool = True


class AlarmRuleOut(AlarmRuleIn):
    rule_id: str
    updated_at: datetime
