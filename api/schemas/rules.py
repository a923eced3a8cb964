"""Alarm rules as the API answers them (the console's alarm rules page)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RuleOut(BaseModel):
    id: str
    kind: str
    severity: str
    title: str
    enabled: bool
    body: dict[str, Any]
    updated_at: datetime
    open_alarms: int


class EnabledIn(BaseModel):
    enabled: bool


class PreviewDevice(BaseModel):
    device: str
    alarms: int
    first_at: datetime | None
    last_at: datetime | None
    minutes: int | None
    peak: float | None


class PreviewOut(BaseModel):
    rule: str
    kind: str
    since: datetime
    until: datetime
    basis: str
    alarms: int
    devices: list[PreviewDevice]
