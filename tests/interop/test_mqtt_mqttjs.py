"""The MQTT driver (paho) reading devices that publish with MQTT.js (npm, tests/interop/peers),
MQTT 5 and 3.1.1, through a real Mosquitto: every JSON shape the driver accepts, commands
answered by the device, and restarts of the publisher and of the broker mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityops import wire
from edge_agents.config import DeviceConfig
from edge_agents.devices import DeviceRunner
from edge_agents.drivers.mqtt.driver import MqttDriver
from edge_agents.profiles import parse_profile
from tests.component.conftest import FieldBroker
from tests.helpers import await_for, stop_task
from tests.interop.conftest import Peer

PROFILE = parse_profile({
    "model": "mqttjs-sensor", "category": "environment", "protocol": "mqtt",
    "points": [
        {"name": "temp", "data_type": "int16", "scale": 0.1,
         "address": {"topic": "state", "field": "env.temp_x10"}},
        {"name": "humidity", "data_type": "float32", "address": {"topic": "state",
                                                                 "field": "env.humidity"}},
        {"name": "power", "data_type": "bool", "address": {"topic": "state", "field": "power"}},
        {"name": "alarm", "data_type": "bool", "address": {"topic": "state", "field": "alarm"}},
        {"name": "energy", "data_type": "uint64",
         "address": {"topic": "state", "field": "energy_wh"}},
        {"name": "label", "data_type": "string", "writable": True,
         "address": {"topic": "state", "field": "label", "command_topic": "set"}},
        {"name": "setpoint", "data_type": "int16", "writable": True, "scale": 0.5,
         "address": {"topic": "state", "field": "cfg.sp", "command_topic": "set",
                     "command_field": "sp"}},
        {"name": "door", "data_type": "bool", "address": {"topic": "doors", "field": "front"}},
    ],
}, "mqttjs-sensor")
DEVICES = {"v5": ("pump/v5", 5, "ms"), "v311": ("pump/v311", 4, "s")}


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory) -> Iterator[FieldBroker]:
    field = FieldBroker(tmp_path_factory.mktemp("field-broker"))
    field.start()
    yield field
    field.stop()


@pytest.fixture(scope="module")
def publisher(node_peers: Path, mosquitto: FieldBroker, tmp_path_factory, peers) -> Peer:
    folder = tmp_path_factory.mktemp("mqttjs")
    config = folder / "devices.json"
    config.write_text(json.dumps({"url": mosquitto.url, "interval_ms": 100, "devices": [
        {"base": base, "protocolVersion": version, "ts_unit": unit}
        for base, version, unit in DEVICES.values()]}))
    peer = Peer(["node", str(node_peers / "mqtt_device.mjs"), str(config)], None,
                folder / "mqttjs.log", cwd=node_peers, ready="connected pump/v311")
    peers.append(peer.start())
    return peer


def device_config(broker: FieldBroker, name: str) -> DeviceConfig:
    base, _version, unit = DEVICES[name]
    return DeviceConfig.model_validate({
        "id": name, "profile": "mqttjs-sensor", "timeout_s": 1,
        "endpoint": {"protocol": "mqtt", "url": broker.url, "base_topic": base,
                     "ts_field": "sent_at", "ts_unit": unit, "readback_timeout_s": 3}})


@contextlib.asynccontextmanager
async def running(broker: FieldBroker, name: str):
    device = device_config(broker, name)
    driver = MqttDriver(name, PROFILE, device.endpoint, timeout_s=1, gateway="interop")
    got: list = []
    states: list[str] = []
    runner = DeviceRunner(device, PROFILE, driver, got.extend, lambda _d, s: states.append(s))
    task = asyncio.create_task(runner.run())
    try:
        yield runner, driver, got, states
    finally:
        await stop_task(task)


def _temps(got: list) -> int:
    return sum(1 for r in got if r.point == "temp" and r.value is not None)


@pytest.mark.parametrize("name", ["v5", "v311"])
async def test_every_json_shape_from_mqttjs_is_read(publisher: Peer, mosquitto, name: str) -> None:
    async with running(mosquitto, name) as (_runner, _driver, got, _states):
        await await_for(lambda: _true(_temps(got) >= 3 and any(r.point == "door" for r in got)),
                        what="telemetry from MQTT.js")
        good = [r for r in got if r.quality is wire.Quality.GOOD]
        values: dict[str, set] = {}
        for r in good:
            values.setdefault(r.point, set()).add(r.value)
        assert all(20.0 <= t <= 29.9 for t in values["temp"]), values["temp"]  # tenths x 0.1
        assert values["humidity"] == {55.25}
        assert values["power"] == {True, False} and values["alarm"] == {True, False}
        assert values["door"] == {True}
        assert values["label"] == {"泵站 1"}
        assert min(values["energy"]) >= 18446744073709551000, "a uint64 kept exactly"
        assert all(isinstance(v, int) for v in values["energy"])
        now = time.time() * 1000
        stamps = [r.ts_ms for r in good if r.point == "temp"]
        assert all(now - 30_000 < ts <= now for ts in stamps), "the device's own clock, in ms"
        assert len(set(stamps)) >= 3


async def test_commands_are_answered_by_the_mqttjs_device(publisher: Peer, mosquitto) -> None:
    async with running(mosquitto, "v5") as (_runner, driver, got, _states):
        await await_for(lambda: _true(_temps(got) >= 1), what="the first state")
        assert await driver.write("setpoint", 21.5) == 21.5
        assert await driver.write("label", "水位站 3") == "水位站 3"
        assert 'command pump/v5 {"sp":43}' in publisher.output(), "the raw value, 21.5 / 0.5"


async def test_publisher_and_broker_restarts_mid_run(publisher: Peer, mosquitto) -> None:
    async with running(mosquitto, "v311") as (runner, _driver, got, states):
        await await_for(lambda: _true(_temps(got) >= 3), what="telemetry")
        publisher.stop()
        publisher.start()  # a device restart: its readings resume on the same session
        seen = _temps(got)
        await await_for(lambda: _true(_temps(got) >= seen + 3), what="after the publisher")
        assert states == ["online"]
        mosquitto.stop()
        await await_for(lambda: _true(runner.state == "offline"), what="offline")
        mosquitto.start()
        seen = _temps(got)
        await await_for(lambda: _true(_temps(got) >= seen + 3), timeout_s=30,
                        what="telemetry after the broker restart")
        assert states == ["online", "offline", "online"]
        assert publisher.output().count("connected pump/v311") >= 2, "MQTT.js reconnected"


async def _true(value: bool) -> bool:
    return value
