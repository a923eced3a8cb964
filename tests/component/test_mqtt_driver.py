"""The MQTT device driver against the profile-driven MQTT sensor simulator, through a real
Mosquitto field broker."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest

from cityops.errors import DeviceUnreachable
from cityops.mqtt import MqttConnection
from edge_agents.config import DeviceConfig
from edge_agents.driver import DriverFactory
from edge_agents.drivers.mqtt.config import MqttEndpoint
from edge_agents.drivers.mqtt.driver import MqttDriver
from edge_agents.profiles import load_profile, parse_profile
from simulators.mqtt_sensor import MqttSensor
from tests.helpers import await_for, stop_task

NESTED = {
    "model": "nested", "category": "environment", "protocol": "mqtt",
    "points": [
        {"name": "temp", "data_type": "float32", "scale": 0.1,
         "address": {"topic": "state", "field": "env.temp_x10"},
         "simulate": {"kind": "ramp", "mean": 20, "amplitude": 10, "period_s": 5}},
        {"name": "door", "data_type": "bool", "address": {"topic": "doors", "field": "front"},
         "simulate": {"kind": "constant", "mean": 1}},
        {"name": "label", "data_type": "string", "writable": True,
         "address": {"topic": "state", "field": "label", "command_topic": "set"}},
        {"name": "setpoint", "data_type": "int16", "writable": True, "scale": 0.5,
         "range": {"min": 0, "max": 40},
         "address": {"topic": "state", "field": "cfg.sp", "command_topic": "set",
                     "command_field": "sp"}},
        {"name": "counter", "data_type": "uint64", "writable": True,
         "address": {"topic": "state", "field": "counter", "command_topic": "set"}},
    ],
}


@contextlib.asynccontextmanager
async def sensor(profile, url: str, base: str):
    sim = MqttSensor(profile, url, base, tick_s=0.1)
    task = asyncio.create_task(sim.serve())
    try:
        yield sim
    finally:
        await stop_task(task)


def endpoint(url: str, base: str) -> MqttEndpoint:
    return MqttEndpoint(protocol="mqtt", url=url, base_topic=base, readback_timeout_s=3)


async def _true(value: bool) -> bool:
    return value


async def test_json_fields_map_to_points_and_values_move(field_broker) -> None:
    profile = parse_profile(NESTED, "nested")
    async with sensor(profile, field_broker.url, "site/a/dev1"):
        driver = MqttDriver("dev1", profile, endpoint(field_broker.url, "site/a/dev1"))
        await driver.connect()
        got: list = []
        task = asyncio.create_task(driver.subscribe(got.extend))
        await await_for(lambda: _true(len({r.value for r in got if r.point == "temp"}) >= 3),
                        what="moving temperature")
        temps = [r.value for r in got if r.point == "temp"]
        assert all(19 <= t <= 31 for t in temps), temps  # raw tenths scaled by 0.1
        assert any(r.point == "door" and r.value is True for r in got)
        await stop_task(task)
        await driver.close()


async def test_write_publishes_the_command_and_reads_back_the_new_state(field_broker) -> None:
    profile = parse_profile(NESTED, "nested")
    async with sensor(profile, field_broker.url, "site/a/dev2") as sim:
        driver = MqttDriver("dev2", profile, endpoint(field_broker.url, "site/a/dev2"))
        await driver.connect()
        got: list = []
        task = asyncio.create_task(driver.subscribe(got.extend))
        await await_for(lambda: _true(bool(got)), what="the device's first state")
        assert await driver.write("setpoint", 21.5) == 21.5
        assert sim.values["setpoint"] == 43  # the raw value, 21.5 / 0.5
        assert await driver.write("label", "pump hall") == "pump hall"
        big = 123456789012345678  # above 2**53: as a double it would be ...680
        assert await driver.write("counter", big) == big
        assert sim.values["counter"] == big
        await stop_task(task)
        await driver.close()


async def test_shipped_pdu_profile_switches_an_outlet(field_broker) -> None:
    profile = load_profile("power/pdu")
    async with sensor(profile, field_broker.url, "rack/3/pdu"):
        driver = MqttDriver("pdu", profile, endpoint(field_broker.url, "rack/3/pdu"))
        await driver.connect()
        got: list = []
        task = asyncio.create_task(driver.subscribe(got.extend))
        await await_for(lambda: _true(bool(got)), what="the PDU's first state")
        assert await driver.write("outlet_3_on", True) is True
        assert await driver.call(profile.method("power_cycle_outlet_1"), {}) is True
        await stop_task(task)
        await driver.close()


async def test_write_to_a_device_that_does_not_listen_fails_at_once(field_broker) -> None:
    profile = parse_profile(NESTED, "nested")
    driver = MqttDriver("ghost", profile, endpoint(field_broker.url, "nobody/home"))
    await driver.connect()
    with pytest.raises(DeviceUnreachable, match="nothing subscribes"):
        await driver.write("setpoint", 10)
    await driver.close()


async def test_broker_gone_ends_the_session_and_reconnect_fails_cleanly(field_broker) -> None:
    profile = parse_profile(NESTED, "nested")
    driver = MqttDriver("dev3", profile, endpoint(field_broker.url, "x/dev3"), timeout_s=1)
    await driver.connect()
    task = asyncio.create_task(driver.subscribe(lambda _r: None))
    field_broker.stop()
    with pytest.raises(DeviceUnreachable):
        await asyncio.wait_for(task, 60)
    with pytest.raises(DeviceUnreachable):
        await driver.connect()
    field_broker.start()
    await driver.connect()
    await driver.close()


async def test_state_published_while_the_driver_is_away_arrives_after_reconnect(
    field_broker,
) -> None:
    """A persistent session under a stable client id: QoS 1 state messages published while
    the agent reconnects (or restarts) wait at the field broker instead of being lost."""
    profile = parse_profile(NESTED, "nested")
    factory = DriverFactory("gw-north")
    device = DeviceConfig.model_validate({
        "id": "dev4", "profile": "nested", "timeout_s": 5,
        "endpoint": {"protocol": "mqtt", "url": field_broker.url, "base_topic": "x/dev4",
                     "ts_field": "sent_at"}})
    driver = factory.create(device, profile)
    assert driver.client_id == "cityops-gw-north-dev4"
    publisher = MqttConnection(field_broker.url, client_id="field-sensor-dev4")
    await publisher.connect()
    got: list = []
    await driver.connect()
    task = asyncio.create_task(driver.subscribe(got.extend))
    await publisher.publish("x/dev4/state", b'{"env": {"temp_x10": 200}}', qos=1)
    await await_for(lambda: _true(len(got) == 1), what="the first state")
    await stop_task(task)
    await driver.close()
    # away: the sensor keeps publishing (not retained, as many sensors do)
    sent_at = [1_700_000_000_000 + n for n in range(3)]
    for tenths, ts in zip((201, 202, 203), sent_at, strict=True):
        body = {"env": {"temp_x10": tenths}, "sent_at": ts}
        await publisher.publish("x/dev4/state", orjson.dumps(body), qos=1)
    # a new driver object, as after an agent restart: the id is all the broker goes by
    driver = factory.create(device, profile)
    await driver.connect()
    task = asyncio.create_task(driver.subscribe(got.extend))
    await await_for(lambda: _true(len(got) == 4), what="the messages sent while away")
    assert [r.value for r in got] == [20.0, 20.1, 20.2, 20.3]
    assert [r.ts_ms for r in got[1:]] == sent_at, "stamped when sent, not when received"
    await stop_task(task)
    await driver.close()
    await publisher.close()
