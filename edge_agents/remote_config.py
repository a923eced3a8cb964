"""The gateway's devices from the retained cityops/v1/{gateway}/config topic.

An agent whose YAML lists no devices takes them from there, and applies every newer version
at runtime. A config that does not validate is refused as a whole (logged, with the field
path) and the agent keeps running the one it has: a typo in the platform must not stop a
pumping station's sensors. The last accepted config is kept in the queue file, so the agent
starts its devices after a restart even while the broker is unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cityops import wire
from cityops.errors import ConfigError, WireError
from edge_agents.config import DeviceConfig, check_device_secrets, check_protocol
from edge_agents.profiles import describe_validation, load_profile, parse_profile


@dataclass(frozen=True)
class RemoteConfig:
    version: int
    devices: list[DeviceConfig]
    profiles: dict[str, Any]  # device id -> profile


def parse_remote_config(raw: bytes, gateway: str) -> RemoteConfig:
    """Validate a config payload completely; ConfigError names what is wrong."""
    try:
        body: wire.GatewayConfig = wire.decode(wire.GatewayConfig, raw)
    except WireError as err:
        raise ConfigError(f"config: {err.detail}") from err
    if body.gateway != gateway:
        raise ConfigError(f"config is for gateway {body.gateway}, not {gateway}")
    profiles = {
        model: parse_profile(data, f"config.profiles.{model}")
        for model, data in body.profiles.items()
    }
    devices: list[DeviceConfig] = []
    by_device: dict[str, Any] = {}
    for index, data in enumerate(body.devices):
        where = f"config.devices.{index}"
        try:
            device = DeviceConfig.model_validate(data)
        except ValidationError as err:
            raise ConfigError(describe_validation(err, where)) from err
        if device.id in by_device:
            raise ConfigError(f"{where}.id: duplicate device id {device.id}")
        # a profile sent with the config wins; otherwise one shipped with the agent
        profile = profiles.get(device.profile)
        if profile is None:
            try:
                profile = load_profile(device.profile)
            except ConfigError as err:
                raise ConfigError(f"{where}.profile: {err.detail}") from err
        check_protocol(device, profile, where)
        check_device_secrets(device, where)
        devices.append(device)
        by_device[device.id] = profile
    return RemoteConfig(body.version, devices, by_device)
