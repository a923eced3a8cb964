"""Bodies and answers of the notification routes (api/routes/notifications.py)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["critical", "major", "minor", "warning"]


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    kind: Literal["email", "wecom", "dingtalk", "feishu", "sms"]
    config: dict[str, Any] = Field(default_factory=dict)
    secret: dict[str, str] = Field(default_factory=dict, description="stored encrypted; "
                                   "never returned")
    enabled: bool = True


class ChannelOut(BaseModel):
    id: int
    name: str
    kind: str
    config: dict[str, Any]
    has_secret: bool
    enabled: bool
    created_by: str
    created_at: datetime


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80)
    channel_id: int = Field(ge=1)
    kinds: list[str] = Field(min_length=1)
    min_severity: Severity = "warning"
    departments: list[str] | None = None
    role: str | None = None
    recipients: list[str] = Field(default_factory=list, max_length=100)
    quiet_start: time | None = None
    quiet_end: time | None = None


class SubscriptionOut(SubscriptionIn):
    model_config = ConfigDict(extra="ignore")
    id: int
    created_by: str
    created_at: datetime


class DeliveryOut(BaseModel):
    id: int
    notification_id: int
    kind: str
    severity: str
    department_id: str | None
    title: str
    subscription_id: int | None
    channel_id: int
    channel: str
    channel_kind: str
    recipients: list[str]
    state: str
    attempts: int
    next_at: datetime
    held: bool
    last_status: int | None
    last_answer: str | None
    log: list[dict[str, Any]]
    created_at: datetime
    sent_at: datetime | None


class TestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(default="CityOps 通知渠道测试", min_length=1, max_length=500)
    recipients: list[str] = Field(default_factory=list, max_length=20)


class TestOut(BaseModel):
    ok: bool
    status: int | None
    answer: str
