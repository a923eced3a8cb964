"""The wire contract (DESIGN.md §4): topics and payloads, shared by the agent and ingestion.

Payload models are the single source of the JSON Schemas in docs/schemas/ (see
`json_schemas()`); a test keeps the two in step.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from cityops.errors import WireError

TOPIC_ROOT = "cityops/v1"
ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)

Identifier = Annotated[str, Field(pattern=ID_PATTERN, description="lower-case id: a-z 0-9 _ . -")]
# Every number is bounded by what the database stores it in (issue #22): a seq beyond bigint
# passed the schema and was refused by every transaction holding it. Readings are stored as
# double precision: finite only (NaN blanked out the averages).
INT64_MAX = 2**63 - 1
Int64 = Annotated[int, Field(ge=-(2**63), le=INT64_MAX)]
Seq = Annotated[int, Field(ge=0, le=INT64_MAX, description="batch number, bigint")]
# integers as large as a double holds: the store converts them; a larger one cannot be stored
FLOAT_MAX_INT = int(sys.float_info.max)
WireInt = Annotated[StrictInt, Field(ge=-FLOAT_MAX_INT, le=FLOAT_MAX_INT)]
FiniteFloat = Annotated[StrictFloat, Field(allow_inf_nan=False)]
# PostgreSQL text cannot hold NUL: a text reading with one would be refused by COPY
WireText = Annotated[StrictStr, Field(pattern=r"^[^\x00]*$")]
Value = StrictBool | WireInt | FiniteFloat | WireText
MAX_EPOCH_MS = 32503680000000  # year 3000; ingestion also keeps a window around now
EpochMs = Annotated[int, Field(ge=0, le=MAX_EPOCH_MS, description="ms since the Unix epoch, UTC")]


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


MAX_BATCH_READINGS = 10000


class WireGroup(_Payload):
    """One device's readings taken at one time, column-wise (issue #21): the device, time and
    key names once per group instead of once per reading, a quarter of the bytes."""

    device: Identifier
    ts: EpochMs
    points: list[Identifier] = Field(min_length=1, max_length=MAX_BATCH_READINGS)
    values: list[Value | None] = Field(description="one per point; null only with quality bad")
    quality: list[Quality] | None = Field(None, description="one per point; absent: all good")

    @field_validator("values", "quality")
    @classmethod
    def _one_per_point(cls, items: list | None, info: ValidationInfo) -> list | None:
        points = info.data.get("points")  # absent when the points were invalid themselves
        if items is not None and points is not None and len(items) != len(points):
            raise PydanticCustomError(
                "group_length", "{count} {what} for {points} points",
                {"count": len(items), "points": len(points),
                 "what": "values" if info.field_name == "values" else "qualities"})
        return items

    def __len__(self) -> int:
        return len(self.points)


class Telemetry(_Payload):
    """A batch of readings; (gateway, stream, seq) identifies it for exactly-once storage.
    The readings come as a list (`readings`), as groups of one device at one time
    (`groups`), or both: 1 to 10,000 readings in all."""

    model_config = ConfigDict(json_schema_extra={
        "anyOf": [{"required": ["readings"]}, {"required": ["groups"]}]})
    stream: uuid.UUID
    seq: Seq
    readings: list[WireReading] | None = Field(None, min_length=1, max_length=MAX_BATCH_READINGS)
    groups: list[WireGroup] | None = Field(None, min_length=1, max_length=MAX_BATCH_READINGS)

    @model_validator(mode="after")
    def _some_readings(self) -> Telemetry:
        if self.readings is None and self.groups is None:
            raise ValueError("readings or groups is required")
        total = reading_count(self.readings, self.groups)
        if total > MAX_BATCH_READINGS:
            raise ValueError(f"{total} readings in one batch, more than {MAX_BATCH_READINGS}")
        return self


def reading_count(readings: list | None, groups: list | None) -> int:
    """The readings of a batch: those of the list and of every group."""
    return len(readings or ()) + sum(len(g) for g in groups or ())


class Receipt(_Payload):
    """Ingestion to one gateway: these batches of `stream` are committed (rows or dead
    letters), so the agent may forget them. Ranges are inclusive [first, last] pairs."""

    stream: uuid.UUID
    seqs: list[tuple[Seq, Seq]] = Field(
        min_length=1, max_length=10000)


class GatewayState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Status(_Payload):
    state: GatewayState
    agent_version: WireText = ""
    devices: dict[WireText, Literal["online", "offline", "unknown"]] = {}
    # why each offline device is offline (the driver's last error, e.g. the server refused
    # the agent's user): more than "offline" for the operator
    reasons: dict[WireText, WireText] = {}  # stored in jsonb, which cannot hold NUL either
    queue_depth: int | None = Field(None, ge=0, le=INT64_MAX)
    counters: dict[WireText, Int64] = {}
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
    detail: WireText = ""
    readback: Value | None = None
    ts: EpochMs


class GatewayConfig(_Payload):
    """The gateway's devices and the profiles they use, as registered in the platform."""

    gateway: Identifier
    devices: list[dict[str, Any]]
    profiles: dict[str, dict[str, Any]]
    version: int = Field(ge=0, le=INT64_MAX)


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


def gateway_client_id(gateway: str) -> str:
    """The one MQTT client id a gateway's account may connect with (the broker refuses any
    other, so no gateway can take over another client's session: infra/broker/dynsec.py)."""
    return f"agent-{gateway}"


def shared(group: str, topic_filter: str) -> str:
    """An MQTT v5 shared subscription: each message goes to one member of the group."""
    return f"$share/{group}/{topic_filter}"


def deployment_group(base: str, deployment: str) -> str:
    """A shared-subscription group of one deployment: two deployments on one broker must not
    split each other's messages (issue #13: results taken by the other database's API)."""
    return f"{base}-{deployment}"


def internal_root(deployment: str) -> str:
    """Topics between one deployment's processes (alarm events: svc-ingest to svc-api)."""
    return f"{TOPIC_ROOT}/_internal/{deployment}"


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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise WireError(f"duplicate key {key!r}", reason="duplicate_key")
            seen.add(key)
    return obj


def parse_json(raw: bytes) -> Any:
    """JSON without duplicate keys (parsers keep the last one silently, so two readers of the
    same bytes may disagree); WireError says what is wrong. NaN and Infinity are let through
    here so that the models refuse them field by field (wire.FiniteFloat)."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and bad encodings
        raise WireError(f"payload: invalid JSON: {err}", reason="invalid_json") from err


def schema_error(err: PydanticValidationError, prefix: str = "") -> WireError:
    """The first problem of a validation error, with its field path."""
    first = err.errors()[0]
    where = ".".join([prefix] * bool(prefix) + [str(p) for p in first["loc"]]) or "payload"
    kind = "invalid_json" if first["type"] == "json_invalid" else "schema"
    return WireError(f"{where}: {first['msg']}", reason=kind)


def decode(model: type[_Payload], raw: bytes) -> Any:
    """Parse raw bytes into a payload model; WireError says what is wrong."""
    parse_json(raw)
    try:
        return model.model_validate_json(raw)
    except PydanticValidationError as err:
        raise schema_error(err) from err


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
