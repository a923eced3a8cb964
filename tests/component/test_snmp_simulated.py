"""The SNMP driver against the profile-driven simulator where Net-SNMP offers nothing to read:
UPS-MIB with its on-battery trap (sent by Net-SNMP's snmptrap), a router's 32-bit counters
wrapping, an agent restart and a counter cleared without one (no absurd spikes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from pathlib import Path

from edge_agents.config import DeviceConfig
from edge_agents.driver import DriverFactory
from edge_agents.profiles import load_profile
from simulators.snmp.agent import SnmpSimulator, start
from tests.component.snmp_kit import free_udp_port
from tests.helpers import await_for, stop_task

ON_BATTERY_TRAP = "1.3.6.1.2.1.33.2.0.1"


@contextlib.asynccontextmanager
async def simulated(ref: str, traps: dict | None = None, **sim_options: object):
    profile = load_profile(ref)
    port = free_udp_port()
    sim = SnmpSimulator(profile, "sim-community", **sim_options)  # type: ignore[arg-type]
    task = await start(sim, "127.0.0.1", port)
    os.environ["CITYOPS_TEST_SIM_COMMUNITY"] = "sim-community"
    endpoint = {"protocol": "snmp", "host": "127.0.0.1", "port": port,
                "community": {"env": "CITYOPS_TEST_SIM_COMMUNITY"}}
    if traps:
        endpoint["traps"] = traps
    device = DeviceConfig.model_validate({"id": "dev", "profile": "x", "timeout_s": 1,
                                          "poll_interval_s": 0.2, "endpoint": endpoint})
    driver = DriverFactory().create(device, profile)
    await driver.connect()
    try:
        yield sim, driver
    finally:
        await driver.close()
        await stop_task(task)


async def test_ups_values_and_the_on_battery_trap(tmp_path: Path) -> None:
    trap_port = free_udp_port()
    os.environ["CITYOPS_TEST_UPS_TRAPS"] = "ups-traps"
    listener = {"port": trap_port, "community": {"env": "CITYOPS_TEST_UPS_TRAPS"}}
    async with simulated("power/snmp_ups", traps=listener) as (sim, driver):
        first = {r.point: r.value for r in await driver.read()}
        assert first["battery_status"] == 2 and first["battery_low"] is False
        sim.refused.add("1.3.6.1.2.1.33.1.2.5.0")  # upsBatteryVoltage answered genErr
        refused = {r.point: r for r in await driver.read()}
        assert refused["battery_voltage"].quality.value == "bad"
        assert refused["battery_pct"].value == 100  # asked again alone, the others read on
        sim.refused.clear()
        assert first["on_battery"] is False and first["battery_pct"] == 100
        assert first["battery_voltage"] == 54.5 and first["input_frequency_hz"] == 50
        seen: list = []
        task = asyncio.create_task(driver.subscribe(seen.extend))
        try:
            await await_for(lambda: _true(bool(seen)), what="the first poll")
            sim.overrides["output_source"] = 5  # the mains fail: the card says battery
            sent = await asyncio.to_thread(subprocess.run, [
                "snmptrap", "-v2c", "-c", "ups-traps", f"127.0.0.1:{trap_port}", "",
                ON_BATTERY_TRAP], capture_output=True, text=True, check=False,
                env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(tmp_path)})
            assert sent.returncode == 0, sent.stderr
            # the trap's reading first, then the poll it triggers agrees
            await await_for(lambda: _true([r.value for r in seen if r.point == "on_battery"]
                                          [-2:] == [True, True]),
                            timeout_s=10, what="on_battery true from the trap and the poll")
        finally:
            await stop_task(task)


async def test_counter32_wrap_gives_plausible_rates() -> None:
    # every count starts 5000 below 2**32: in_packets (Counter32, ~12 000/s) wraps at once
    async with simulated("network/snmp_router", counter_start=2**32 - 5000) as (sim, driver):
        rates = []
        for _ in range(4):
            await asyncio.sleep(0.25)
            got = {r.point: r for r in await driver.read()}
            rates.append(got["in_packets_ps"].value)
            assert got["if1.in_bps"].quality.value == "good"
        assert all(5_000 < r < 20_000 for r in rates), rates
        assert sim.requests > 0


async def test_restart_and_cleared_counters_give_no_spike() -> None:
    async with simulated("network/snmp_router", counter_start=10**9) as (sim, driver):
        # up for a minute already: a restart is seen as sysUpTime going back, and a device
        # polled a few ms after it started read a lower uptime than the poll after the
        # restart did under CI's load (0.35 s), so the restart went unseen
        sim.started -= 60.0
        await driver.read()
        sim.restart()  # sysUpTime and the counters start again: a new baseline, no rate
        after = {r.point: r for r in await driver.read()}
        assert "if1.in_bps" not in after and "in_packets_ps" not in after
        assert after["uptime_s"].value < 1.0
        await asyncio.sleep(0.2)
        again = {r.point: r for r in await driver.read()}
        assert 0 < again["if1.in_bps"].value < 2e9  # ~0.8 Gbit/s simulated
        sim.clear_counters()  # uptime runs on: the 64-bit counter went backwards
        await asyncio.sleep(0.2)  # the time between two polls
        cleared = {r.point: r for r in await driver.read()}
        assert cleared["if1.in_bps"].quality.value == "bad"
        assert cleared["in_packets_ps"].quality.value == "bad"  # 32-bit: not taken as a wrap
        assert cleared["if1.oper_up"].value is True  # the rest of the device reads on
        await asyncio.sleep(0.2)
        back = {r.point: r for r in await driver.read()}
        assert 0 < back["if1.in_bps"].value < 2e9


async def _true(value: bool) -> bool:
    return value
