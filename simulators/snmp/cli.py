"""`cityops sim snmp`: an SNMPv2c agent simulating an SNMP profile (community from
CITYOPS_SIM_COMMUNITY, default public)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cityops.errors import PlatformError


def sim_snmp(
    profile: Annotated[str, typer.Option(help="profile name (power/snmp_ups) or YAML path")],
    port: Annotated[int, typer.Option(help="UDP port")] = 16100,
    host: str = "127.0.0.1",
    counter_start: Annotated[int, typer.Option(help="where counters start (2**32 - 5000 "
                                                    "wraps the 32-bit ones at once)")] = 0,
) -> None:
    """Answer SNMP GET/GETNEXT/GETBULK for a profile's points, values from its `simulate`."""
    from cityops.running import cli_settings, run_async
    from edge_agents.profiles import load_profile
    from simulators.snmp.agent import SnmpSimulator, serve

    cli_settings()
    loaded = load_profile(profile)
    if loaded.protocol != "snmp":
        raise PlatformError(f"profile {profile} speaks {loaded.protocol}, not snmp")
    community = os.environ.get("CITYOPS_SIM_COMMUNITY", "public")
    run_async(serve(SnmpSimulator(loaded, community, counter_start), host, port))
