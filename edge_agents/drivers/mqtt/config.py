"""MQTT field devices as validated data: which topic and JSON field carries each point, and
where writes go. Topics in a profile are relative to the device's `base_topic`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TOPIC_PATTERN = r"^[^#+\s]+$"  # a concrete topic: no wildcards
FIELD_PATTERN = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"  # a dotted path into a JSON object


class MqttAddress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    topic: str = Field(pattern=TOPIC_PATTERN, description="state topic, relative to base_topic")
    field: str = Field(pattern=FIELD_PATTERN, description="dotted path in the JSON payload")
    command_topic: str | None = Field(None, pattern=TOPIC_PATTERN)
    command_field: str | None = Field(None, pattern=FIELD_PATTERN, description="default: field")

    @model_validator(mode="after")
    def _command_field_needs_topic(self) -> MqttAddress:
        if self.command_field is not None and self.command_topic is None:
            raise ValueError("`command_field` needs `command_topic`")
        return self


class MqttEndpoint(BaseModel):
    """A field broker and the topic prefix of one device on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol: Literal["mqtt"]
    url: str = Field(pattern=r"^mqtts?://")
    base_topic: str = Field(pattern=TOPIC_PATTERN)
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    client_id: str | None = Field(None, description="default: cityops-<gateway>-<device>")
    qos: Literal[0, 1] = 1
    session_expiry_s: int = Field(
        3600, ge=0, le=7 * 86400,
        description="how long the field broker keeps the session, and queues QoS 1 state "
                    "messages, while the agent is away; 0: a clean session each time")
    readback_timeout_s: float = Field(5.0, gt=0, le=60, description="wait for the new state")
    ts_field: str | None = Field(
        None, pattern=FIELD_PATTERN,
        description="dotted path of the device's own timestamp in state messages; default: "
                    "the time the agent received the message")
    ts_unit: Literal["s", "ms"] = "ms"

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        if self.password_env:
            return os.environ.get(self.password_env)
        return None

    def topic(self, relative: str) -> str:
        return f"{self.base_topic.rstrip('/')}/{relative}"
