"""`cityops sim opcua` and `cityops sim mqtt`: device simulators for OPC-UA and MQTT profiles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cityops.errors import PlatformError


def _load(profile: str, protocol: str):
    from edge_agents.profiles import load_profile

    loaded = load_profile(profile)
    if loaded.protocol != protocol:
        raise PlatformError(f"profile {profile} speaks {loaded.protocol}, not {protocol}")
    return loaded


def sim_opcua(
    profile: Annotated[str, typer.Option(help="profile name (av/video_wall) or YAML path")],
    port: Annotated[int, typer.Option(help="TCP port")] = 4840,
    host: str = "127.0.0.1",
    tick_s: Annotated[float, typer.Option(help="how often values move")] = 0.5,
    secure_dir: Annotated[
        Path | None, typer.Option(help="offer Basic256Sha256 with a certificate kept here")
    ] = None,
    username: Annotated[str | None, typer.Option(help="require this user")] = None,
) -> None:
    """Serve an OPC-UA server simulating a profile (password in CITYOPS_SIM_PASSWORD)."""
    from cityops.running import cli_settings as _settings
    from cityops.running import run_async as _run_async
    from simulators.opcua_server import serve

    _settings()  # asyncua held at WARNING there (cityops/logging.py)
    password = os.environ.get("CITYOPS_SIM_PASSWORD") if username else None
    _run_async(serve(_load(profile, "opcua"), host, port, tick_s, secure_dir, username,
                     password))


def sim_mqtt(
    profile: Annotated[str, typer.Option(help="profile name (environment/temp_humidity)")],
    base_topic: Annotated[str, typer.Option(help="the device's topic prefix")],
    url: Annotated[str, typer.Option(help="the field broker")] = "mqtt://127.0.0.1:1883",
    tick_s: Annotated[float, typer.Option(help="how often state is published")] = 1.0,
    username: Annotated[str | None, typer.Option(help="password in CITYOPS_SIM_PASSWORD")] = None,
) -> None:
    """Publish an MQTT field device's state from a profile and apply its commands."""
    from cityops.running import cli_settings as _settings
    from cityops.running import run_async as _run_async
    from simulators.mqtt_sensor import serve

    _settings()
    password = os.environ.get("CITYOPS_SIM_PASSWORD") if username else None
    _run_async(serve(_load(profile, "mqtt"), url, base_topic, tick_s, username, password))


def register(sim_app: typer.Typer) -> None:
    sim_app.command("opcua")(sim_opcua)
    sim_app.command("mqtt")(sim_mqtt)
    from simulators.onvif.cli import sim_onvif  # an ONVIF camera

    sim_app.command("onvif")(sim_onvif)
    from simulators.snmp.cli import sim_snmp  # an SNMP switch, router or UPS

    sim_app.command("snmp")(sim_snmp)
    from simulators.departments.demo import sim_departments  # 数据汇聚's department systems

    sim_app.command("departments")(sim_departments)
