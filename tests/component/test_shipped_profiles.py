"""Every shipped profile is served by its protocol's simulator, from the same file, and read
by its driver over real sockets: every point answers, and simulated values move."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from edge_agents.config import DeviceConfig
from edge_agents.driver import DriverFactory
from edge_agents.profiles import all_profile_refs, load_profile
from simulators.modbus_device import serve as serve_modbus
from simulators.mqtt_sensor import MqttSensor
from simulators.onvif.server import serve as serve_onvif
from simulators.opcua_server import OpcUaSimulator
from simulators.snmp.agent import SnmpSimulator
from simulators.snmp.agent import start as start_snmp
from tests.component.snmp_kit import free_udp_port
from tests.helpers import await_for, free_port, port_open, stop_task

MOVING = {"sine", "ramp", "random_walk"}


@contextlib.asynccontextmanager
async def simulated(profile, field_broker):
    port = free_port()
    if profile.protocol == "modbus":
        task = asyncio.create_task(serve_modbus(profile, "127.0.0.1", port, tick_s=0.1))
        endpoint = {"host": "127.0.0.1", "port": port}
    elif profile.protocol == "opcua":
        task = asyncio.create_task(OpcUaSimulator(profile, "127.0.0.1", port, tick_s=0.1).serve())
        endpoint = {"protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{port}/cityops/",
                    "mode": "poll"}
    elif profile.protocol == "onvif":
        os.environ["CITYOPS_TEST_CAMERA_PASSWORD"] = "shipped-camera"
        task = asyncio.create_task(serve_onvif(port, "admin", "shipped-camera"))
        endpoint = {"protocol": "onvif", "host": "127.0.0.1", "port": port,
                    "username": "admin", "password_env": "CITYOPS_TEST_CAMERA_PASSWORD"}
    elif profile.protocol == "snmp":
        os.environ["CITYOPS_TEST_SNMP_COMMUNITY"] = "shipped"
        task = await start_snmp(SnmpSimulator(profile, "shipped"), "127.0.0.1", port)
        # with a trap listener the driver pushes: rates come from the second poll on
        endpoint = {"protocol": "snmp", "host": "127.0.0.1", "port": port,
                    "community": {"env": "CITYOPS_TEST_SNMP_COMMUNITY"},
                    "traps": {"port": free_udp_port(),
                              "community": {"env": "CITYOPS_TEST_SNMP_COMMUNITY"}}}
    else:
        sensor = MqttSensor(profile, field_broker.url, f"test/{profile.model}", tick_s=0.1)
        task = asyncio.create_task(sensor.serve())
        endpoint = {"protocol": "mqtt", "url": field_broker.url,
                    "base_topic": f"test/{profile.model}"}
        port = field_broker.port
    if profile.protocol != "snmp":  # UDP: bound before start_snmp returned
        await await_for(lambda: asyncio.to_thread(port_open, port), what="simulator")
    try:
        yield DeviceConfig.model_validate({"id": "dev", "profile": "x", "endpoint": endpoint})
    finally:
        await stop_task(task)


async def _snapshot(driver, names: set[str]) -> dict:
    if not driver.pushes:
        return {r.point: r for r in await driver.read()}
    got: dict = {}
    task = asyncio.create_task(driver.subscribe(lambda rs: got.update({r.point: r for r in rs})))
    try:
        await await_for(lambda: _true(names <= set(got)), timeout_s=10, what="every point")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return got


@pytest.mark.parametrize("ref", all_profile_refs())
async def test_simulator_serves_and_driver_reads_every_point(ref: str, field_broker) -> None:
    profile = load_profile(ref)
    names = {p.name for p in profile.points}
    factory = DriverFactory()
    async with simulated(profile, field_broker) as device:
        driver = factory.create(device, profile)
        await driver.connect()
        first = await _snapshot(driver, names)
        assert set(first) == names
        assert all(r.quality.value == "good" for r in first.values()), first
        for point in profile.points:  # constants come through exactly (within float32)
            sim = point.simulate
            if sim is not None and sim.kind == "constant" and not sim.noise:
                expected = sim.mean >= 0.5 if point.data_type.value == "bool" else sim.mean
                assert first[point.name].value == pytest.approx(expected, rel=1e-5), point.name
        moving = {p.name for p in profile.points
                  if p.simulate and p.simulate.kind in MOVING and not p.writable}
        if moving:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                now = await _snapshot(driver, names)
                if any(now[n].value != first[n].value for n in moving):
                    break
                await asyncio.sleep(0.2)
            else:
                pytest.fail(f"none of {sorted(moving)} moved")
        await driver.close()
    factory.close()


async def _true(value: bool) -> bool:
    return value
