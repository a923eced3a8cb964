"""Bodies of commands and presets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cityops.wire import Identifier, Value

CommandState = Literal["pending", "sent", "succeeded", "failed", "rejected", "expired"]


class Action(BaseModel):
    """A write (`point` and `value`) or a method call (`method` and `args`)."""

    model_config = ConfigDict(extra="forbid")
    point: Identifier | None = Field(None, examples=["demand_limit_kw"])
    value: Value | None = Field(None, examples=[120])
    method: Identifier | None = Field(None, examples=["recall_layout"])
    args: dict[str, Value] | None = Field(None, examples=[{"layout": 4}])
    ttl_s: float = Field(30, gt=0, le=3600, description="seconds before it expires unsent")

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        if (self.point is None) == (self.method is None):
            raise ValueError("give either point and value, or method (and args)")
        if self.point is not None and (self.value is None or self.args is not None):
            raise ValueError("a write needs value and takes no args")
        if self.method is not None and self.value is not None:
            raise ValueError("a method call takes args, not value")
        return self


class CommandIn(Action):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"point": "demand_limit_kw", "value": 120},
                     {"method": "recall_layout", "args": {"layout": 4}}]})


class Command(BaseModel):
    id: uuid.UUID
    device: str
    gateway: str
    point: str | None
    value: Any = None
    method: str | None
    args: dict[str, Any] | None
    state: CommandState
    detail: str
    readback: Any = Field(None, description="the value read back after the write")
    created_by: str
    created_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None = Field(description="when the platform recorded the result")
    applied_at: datetime | None = Field(
        None, description="when the gateway performed the command, by its clock")
    expires_at: datetime
    preset_run_id: uuid.UUID | None
    step: int | None


class PresetStep(Action):
    device: Identifier = Field(examples=["videowall-01"])


class PresetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Morning briefing",
        "steps": [
            {"device": "videowall-01", "point": "power_on", "value": True},
            {"device": "videowall-01", "method": "recall_layout", "args": {"layout": 4}},
            {"device": "amp-01", "point": "volume_db", "value": -20},
        ]}]})
    title: str = Field("", max_length=200)
    steps: list[PresetStep] = Field(min_length=1, max_length=100)


class Preset(BaseModel):
    name: str
    title: str
    steps: list[dict[str, Any]]
    updated_by: str
    updated_at: datetime


class RunStep(BaseModel):
    device: str
    point: str | None = None
    value: Any = None
    method: str | None = None
    args: dict[str, Any] | None = None
    command: uuid.UUID | None
    state: Literal["waiting", "skipped", "pending", "sent", "succeeded", "failed", "rejected",
                   "expired"]
    detail: str
    readback: Any = None


class PresetRun(BaseModel):
    id: uuid.UUID
    preset: str
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    state: Literal["running", "succeeded", "failed"]
    steps: list[RunStep]
