"""The agent's config file (gw.yaml): validated at start, failing with the field's path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from cityops.errors import ConfigError
from cityops.wire import Identifier
from edge_agents.drivers.modbus.config import ModbusEndpoint
from edge_agents.drivers.mqtt.config import MqttEndpoint
from edge_agents.drivers.onvif.config import OnvifEndpoint
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.drivers.snmp.config import SnmpEndpoint
from edge_agents.points import Profile
from edge_agents.profiles import describe_validation, load_profile


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(_Config):
    url: str = "mqtt://127.0.0.1:1884"
    username: str | None = Field(None, description="defaults to the gateway id")
    # secrets never live in YAML: the password comes from this variable or file
    password_env: str = "CITYOPS_GATEWAY_PASSWORD"  # noqa: S105 - a variable name
    password_file: Path | None = None
    # with an mqtts:// url: the CA that signed the broker's certificate (default: the system's)
    # and this gateway's own certificate when the broker takes identities from certificates
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return os.environ.get(self.password_env)


class QueueConfig(_Config):
    path: Path
    max_bytes: int = Field(1 << 30, ge=1 << 18,
                           description="on-disk limit of the queue's files (database and WAL)")
    when_full: Literal["drop_oldest"] = "drop_oldest"
    # 5,000 grouped readings of a meter poll are ~65 kB (13 bytes each, docs/wire.md): the
    # per-batch costs (queue hop, SQLite commit, publish, PUBACK, receipt) spread over five
    # times the readings of the 1,000 list-form ones of the same bytes; a quiet gateway's
    # batches are closed by batch_max_wait_ms long before (issue #21, docs/ingestion.md)
    batch_max_readings: int = Field(5000, ge=1, le=10000)
    batch_max_wait_ms: int = Field(200, ge=1, le=60000)
    publish_window: int = Field(64, ge=1, le=1000, description="batches awaiting PUBACK at once")
    # batches stay queued until ingestion's commit receipt (docs/wire.md); one still without
    # a receipt this long after a later one got its receipt is sent again
    receipt_timeout_s: float = Field(30.0, gt=0, le=3600)


def _endpoint_protocol(value: Any) -> str:
    # configs written before OPC-UA and MQTT have no `protocol` key: they are Modbus
    if isinstance(value, dict):
        return value.get("protocol", "modbus")
    return getattr(value, "protocol", "modbus")


Endpoint = Annotated[
    Annotated[ModbusEndpoint, Tag("modbus")]
    | Annotated[OpcUaEndpoint, Tag("opcua")]
    | Annotated[MqttEndpoint, Tag("mqtt")]
    | Annotated[OnvifEndpoint, Tag("onvif")]
    | Annotated[SnmpEndpoint, Tag("snmp")],
    Discriminator(_endpoint_protocol),
]


class DeviceConfig(_Config):
    id: Identifier
    title: str = ""
    profile: str
    endpoint: Endpoint
    poll_interval_s: float = Field(1.0, gt=0, le=86400)
    timeout_s: float = Field(2.0, gt=0, le=60)
    max_gap: int = Field(16, ge=0, le=125, description="registers read through between points")
    site: Identifier | None = None
    department: Identifier | None = None
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)


class AgentConfig(_Config):
    gateway: Identifier
    site: Identifier | None = None
    department: Identifier | None = None
    broker: BrokerConfig = BrokerConfig()
    queue: QueueConfig
    status_interval_s: float = Field(10.0, gt=0)
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus; 0: any")
    metrics_host: str = "127.0.0.1"
    # a device's poll goes as one group (a quarter of the bytes, issue #21); `readings` keeps
    # the list form for an ingestion older than the grouped form (docs/wire.md)
    telemetry_form: Literal["grouped", "readings"] = "grouped"
    # no devices here: they come from the retained cityops/v1/{gateway}/config topic
    devices: list[DeviceConfig] = []

    @model_validator(mode="after")
    def _unique_devices(self) -> AgentConfig:
        ids = [d.id for d in self.devices]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate device ids: {dupes}")
        return self


class LoadedAgentConfig(BaseModel):
    """The config with every device's profile loaded."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    config: AgentConfig
    profiles: dict[str, Profile]  # device id -> profile


def load_agent_config(path: Path, *, check_secrets: bool = False) -> LoadedAgentConfig:
    """check_secrets: on the agent's own host, every password variable or file must exist
    (`cityops registry load` reads the same file on a host that has none of them)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from err
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation(err, str(path))) from err
    profiles = {}
    for index, device in enumerate(config.devices):
        try:
            profiles[device.id] = load_profile(device.profile, base=path.parent)
        except ConfigError as err:
            raise ConfigError(f"{path}: devices.{index}.profile: {err.detail}") from err
        check_protocol(device, profiles[device.id], f"{path}: devices.{index}")
        if check_secrets:
            check_device_secrets(device, f"{path}: devices.{index}")
    return LoadedAgentConfig(config=config, profiles=profiles)


def check_device_secrets(device: DeviceConfig, where: str) -> None:
    """A device password named by a variable or file must be there when the agent starts: an
    unset variable otherwise surfaces only as the device refusing an empty password."""
    endpoint = device.endpoint
    variable = getattr(endpoint, "password_env", None)
    if variable and variable not in os.environ:
        raise ConfigError(f"{where}.endpoint.password_env: the environment variable {variable} "
                          "is not set")
    problems = getattr(endpoint, "missing_secrets", list)()  # SNMP communities and keys
    if problems:
        raise ConfigError(f"{where}.endpoint.{problems[0]}")
    secret_file = getattr(endpoint, "password_file", None)
    if secret_file is not None and not os.access(secret_file, os.R_OK):
        raise ConfigError(f"{where}.endpoint.password_file: {secret_file} cannot be read")


def check_protocol(device: DeviceConfig, profile: Any, where: str) -> None:
    if device.endpoint.protocol != profile.protocol:
        raise ConfigError(
            f"{where}.endpoint: profile {profile.model} speaks {profile.protocol}, "
            f"the endpoint is {device.endpoint.protocol}"
        )
