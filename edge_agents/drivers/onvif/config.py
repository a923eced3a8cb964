"""ONVIF cameras as validated data: where each point comes from (device information, media,
or an event topic) and the camera operations a profile method performs. Secrets never live
in YAML: the password comes from an environment variable or a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEVICE_FIELDS = ("manufacturer", "model", "firmware_version", "serial_number", "hardware_id")
MEDIA_FIELDS = ("profile_count", "stream_uri", "snapshot_uri")
# an ONVIF topic expression in the ConcreteSet dialect, e.g. tns1:VideoSource/MotionAlarm
TOPIC_PATTERN = r"^[A-Za-z][\w.-]*:[\w.-]+(/[\w.-]+)*$"


class OnvifAddress(BaseModel):
    """`source: session` (online: true while the camera answers), `device` (GetDeviceInformation
    fields), `media` (profiles, RTSP stream URI, snapshot URI of the endpoint's media profile),
    or `event` (a PullPoint topic and the data item carrying the state)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: Literal["session", "device", "media", "event"]
    field: str | None = Field(None, description="device or media field; session: online")
    topic: str | None = Field(None, pattern=TOPIC_PATTERN, description="event topic")
    item: str = Field("State", pattern=r"^\w+$", description="the event's data item")

    @model_validator(mode="after")
    def _fits_source(self) -> OnvifAddress:
        allowed = {"session": ("online",), "device": DEVICE_FIELDS, "media": MEDIA_FIELDS}
        if self.source == "event":
            if self.topic is None:
                raise ValueError("an event point needs `topic`")
        elif self.field not in allowed[self.source]:
            raise ValueError(f"source {self.source} takes field one of "
                             f"{', '.join(allowed[self.source])}")
        return self


class OnvifOperation(BaseModel):
    """A camera operation a profile method performs: `goto_preset` (PTZ GotoPreset; the
    method's `preset` argument is a preset token or name) or `snapshot` (fetch the media
    profile's snapshot; the command's read-back is the JPEG as a data: URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    operation: Literal["goto_preset", "snapshot"]


class OnvifEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: Literal["onvif"]
    host: str = Field(pattern=r"^[A-Za-z0-9.\-\[\]:]+$", description="camera address")
    port: int = Field(80, ge=1, le=65535)
    username: str = Field(min_length=1)
    password_env: str | None = None
    password_file: Path | None = None
    media_profile: str | None = Field(
        None, description="the media profile token for stream, snapshot and PTZ; default: the "
                          "camera's first profile")
    snapshot_auth: Literal["digest", "basic"] = "digest"
    snapshot_max_bytes: int = Field(
        2 << 20, ge=1024, le=8 << 20,
        description="a larger snapshot fails its command (it travels in the command result)")
    events: bool = Field(True, description="subscribe to the camera's PullPoint events")
    adjust_time: bool = Field(
        False, description="sign requests in the camera's time (read from its unauthenticated "
                           "GetSystemDateAndTime): for cameras whose clock is off and cannot "
                           "be put on NTP; otherwise they refuse the password as stale")
    pull_timeout_s: float = Field(5.0, gt=0, le=60, description="a PullMessages long poll")
    subscription_s: int = Field(60, ge=10, le=3600, description="renewed before it ends")

    @model_validator(mode="after")
    def _one_password_source(self) -> OnvifEndpoint:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self

    def password(self) -> str:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return os.environ.get(self.password_env or "", "")
