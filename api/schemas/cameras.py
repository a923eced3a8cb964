"""Bodies of the camera and video-wall routes (docs/video.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cityops.wire import Identifier

CameraKey = Field(min_length=1, max_length=200, examples=["cam-0001", "县府路口东"],
                  description="a camera's id, its device's id, or its (unique) name")


class CameraLink(BaseModel):
    model_config = ConfigDict(extra="forbid")
    device: Identifier | None = Field(description="the ONVIF camera device; null unlinks")


class SnapshotInfo(BaseModel):
    taken_at: datetime
    taken_by: str
    command: uuid.UUID
    bytes: int
    url: str = Field(description="where the image is (GET, audited as a view of video)")


class CameraStatus(BaseModel):
    id: str
    name: str
    code: str
    department: str | None
    longitude: float
    latitude: float
    device: str | None = Field(description="the linked ONVIF device, if any")
    platform_status: str | None = Field(
        None, description="ON/OFF as the GB/T 28181 platform's catalogue last said, if imported")
    state: str | None = Field(description="online/offline as its gateway last reported it")
    points: dict[str, Any] = Field(description="the device's latest values: online, motion, "
                                               "tamper, stream_uri...")
    snapshot: SnapshotInfo | None


class WallInputIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera: str = CameraKey


class WallInput(BaseModel):
    input: int
    camera: str
    camera_name: str
    device: str | None
    updated_by: str
    updated_at: datetime


class WallWindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    camera: str = CameraKey
    ttl_s: float = Field(30, gt=0, le=3600)
