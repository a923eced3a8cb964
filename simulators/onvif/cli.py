"""`cityops sim onvif`: one simulated ONVIF camera on 127.0.0.1."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cityops.errors import ConfigError


def sim_onvif(
    port: Annotated[int, typer.Option(help="HTTP port of the camera's ONVIF services")] = 8000,
    username: Annotated[str, typer.Option(help="the camera's user")] = "admin",
    name: Annotated[str, typer.Option(help="shown on its snapshots")] = "cam-sim",
) -> None:
    """Serve a simulated ONVIF camera (password in CITYOPS_SIM_PASSWORD); motion and tamper
    move with POST /_simulator/state {"motion": true}."""
    from cityops.running import cli_settings as _settings
    from cityops.running import run_async as _run_async
    from simulators.onvif.server import serve

    _settings()
    password = os.environ.get("CITYOPS_SIM_PASSWORD")
    if not password:
        raise ConfigError("CITYOPS_SIM_PASSWORD: the camera's password is not set")
    _run_async(serve(port, username, password, name))
