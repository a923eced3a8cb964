"""The wire contract (DESIGN.md §4): topics and payloads, shared by the agent and ingestion.

Payload models are the single source of the JSON Schemas in docs/schemas/ (see
`json_schemas()`); a test keeps the two in step.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError

from cityops.errors import WireError

TOPIC_ROOT = "cityops/v1"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)

Identifier = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: a-z 0-9 _ . -")]
Value = StrictBool | StrictInt | StrictFloat | StrictStr
EpochMs = Annotated[int, Field(ge=0, le=32503680000000, description="ms since the Unix epoch, UTC")]


class Quality(StrEnum):
    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


QUALITY_CODES = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WireReading(_Payload):
    device: Identifier
    point: Identifier
    ts: EpochMs
    value: Value | None = Field(description="null only with quality bad")
    quality: Quality = Quality.GOOD


class Telemetry(_Payload):
    """A batch of readings; (gateway, stream, seq) identifies it for exactly-once storage."""

    stream: uuid.UUID
    seq: int = Field(ge=0)
    readings: list[WireReading] = Field(min_length=1, max_length=10000)


class Receipt(_Payload):
    """Ingestion to one gateway: these batches of `stream` are committed (rows or dead
    letters), so the agent may forget them. Ranges are inclusive [first, last] pairs."""

    stream: uuid.UUID
    seqs: list[tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]] = Field(
        min_length=1, max_length=10000)


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(_Payload):
    state: GatewayState
    agent_version: str = ""
    devices: dict[str, Literal["online", "offline", "unknown"]] = {}
    # why each offline device is offline (the driver's last error, e.g. the server refused
    # the agent's user): more than "offline" for the operator
    reasons: dict[str, str] = {}
    queue_depth: int | None = Field(None, ge=0)
    counters: dict[str, int] = {}
    ts: EpochMs | None = None


class WriteCommand(_Payload):
    device: Identifier
    point: Identifier
    value: Value
    expires_at: EpochMs


class MethodCommand(_Payload):
    device: Identifier
    method: Identifier
    args: dict[str, Value] = {}
    expires_at: EpochMs


class CommandStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


class CommandResult(_Payload):
    status: CommandStatus
    detail: str = ""
    readback: Value | None = None
    ts: EpochMs


class GatewayConfig(_Payload):
    """The gateway's devices and the profiles they use, as registered in the platform."""

    gateway: Identifier
    devices: list[dict[str, Any]]
    profiles: dict[str, dict[str, Any]]
    version: int = Field(ge=0)


# -- topics ---------------------------------------------------------------------------------
def telemetry_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/telemetry"


def status_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/status"


def command_topic(gateway: str, command_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/commands/{command_id}"


def command_result_topic(gateway: str, command_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/command-results/{command_id}"


def config_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/config"


def receipts_topic(gateway: str) -> str:
    return f"{TOPIC_ROOT}/{gateway}/receipts"


TELEMETRY_SUBSCRIPTION = f"{TOPIC_ROOT}/+/telemetry"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT v5 shared subscription: each message goes to one member of the group."""
    return f"$share/{group}/{topic_filter}"


def gateway_of(topic: str, kind: str) -> str:
    """The gateway id from a topic of the given kind, or WireError naming what is wrong."""
    parts = topic.split("/")
    root = TOPIC_ROOT.split("/")
    if parts[: len(root)] != root or len(parts) < len(root) + 2 or parts[len(root) + 1] != kind:
        raise WireError(f"topic {topic!r} is not a {kind} topic")
    gateway = parts[len(root)]
    if not _ID_RE.match(gateway):
        raise WireError(f"topic {topic!r} has an invalid gateway id")
    return gateway


# -- payloads ----------------------------------------------------------------------------------
def encode(payload: BaseModel) -> bytes:
    return orjson.dumps(payload.model_dump(mode="json", exclude_none=False))


def decode(model: type[_Payload], raw: bytes) -> Any:
    """Parse raw bytes into a payload model; WireError says what is wrong."""
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        kind = "invalid_json" if first["type"] == "json_invalid" else "schema"
        raise WireError(f"{where}: {first['msg']}", reason=kind) from err


def json_schemas() -> dict[str, dict[str, Any]]:
    """One JSON Schema per payload, keyed by file name under docs/schemas/."""
    models: dict[str, type[BaseModel]] = {
        "telemetry": Telemetry,
        "receipt": Receipt,
        "status": Status,
        "command-write": WriteCommand,
        "command-method": MethodCommand,
        "command-result": CommandResult,
        "config": GatewayConfig,
    }
    return {name: model.model_json_schema() for name, model in models.items()}
