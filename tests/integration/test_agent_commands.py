"""Commands and the retained config, through a real agent process and the real broker, as the
API publishes them: write, method, range check, expiry, a redelivered command id."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from cityops import wire
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, port_open, wait_for
from tests.integration.test_agent_outage import PROFILE


class ApiSide:
    """What the API does on the broker: publish commands and config, read results and status."""

    def __init__(self, broker: BrokerFixture, gateway: str) -> None:
        self.gateway = gateway
        self.results: dict[str, list[dict]] = defaultdict(list)
        self.status: dict = {}
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"api-{uuid.uuid4().hex[:8]}", protocol=paho.MQTTv5)
        self.client.username_pw_set("svc-api", broker.passwords["svc-api"])
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.broker.port)
        self.client.loop_start()
        self.client.subscribe([(f"{wire.TOPIC_ROOT}/{gateway}/command-results/+", 1),
                               (wire.status_topic(gateway), 1)])

    def _on_message(self, _c, _ud, msg) -> None:
        body = orjson.loads(msg.payload)
        if msg.topic.endswith("/status"):
            self.status = body
        else:
            self.results[msg.topic.rsplit("/", 1)[1]].append(body)

    def command(self, command_id: str, expires_in_s: float = 30, **body) -> None:
        body["expires_at"] = int((time.time() + expires_in_s) * 1000)
        self.client.publish(wire.command_topic(self.gateway, command_id), orjson.dumps(body),
                            qos=1).wait_for_publish(10)

    def result(self, command_id: str, count: int = 1) -> dict:
        wait_for(lambda: len(self.results[command_id]) >= count, timeout_s=20,
                 what=f"result {count} of command {command_id}")
        return self.results[command_id][count - 1]

    def config(self, payload: dict) -> None:
        self.client.publish(wire.config_topic(self.gateway), orjson.dumps(payload), qos=1,
                            retain=True).wait_for_publish(10)

    def close(self) -> None:
        self.client.publish(wire.config_topic(self.gateway), b"", qos=1, retain=True)
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def gateway(broker: BrokerFixture) -> str:
    return f"gw-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def api(broker: BrokerFixture, gateway: str) -> Iterator[ApiSide]:
    side = ApiSide(broker, gateway)
    yield side
    side.close()


def _start(processes: Processes, broker: BrokerFixture, tmp_path: Path, gateway: str,
           devices: list[dict]) -> None:
    config = {"gateway": gateway, "broker": {"url": broker.url}, "status_interval_s": 0.5,
              "queue": {"path": str(tmp_path / "queue.db")}, "devices": devices}
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    password = broker.add_gateway(gateway)
    processes.start("agent", "agent", "--config", str(tmp_path / "gw.yaml"),
                    env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": password})


def _modbus_sim(processes: Processes, tmp_path: Path, count: int = 1) -> int:
    port = free_port()
    (tmp_path / "meter.yaml").write_text(yaml.safe_dump(PROFILE))
    processes.start("sim", "sim", "modbus", "--profile", str(tmp_path / "meter.yaml"),
                    "--port", str(port), "--count", str(count))
    wait_for(lambda: port_open(port), what="modbus simulator")
    return port


def _register(port: int, unit: int = 1) -> int:
    client = ModbusTcpClient("127.0.0.1", port=port)
    assert client.connect()
    try:
        return client.read_holding_registers(10, count=1, device_id=unit).registers[0]
    finally:
        client.close()


def _set_register(port: int, value: int) -> None:
    client = ModbusTcpClient("127.0.0.1", port=port)
    assert client.connect()
    client.write_register(10, value, device_id=1)
    client.close()


def test_commands_are_checked_executed_once_read_back_and_reported(
    processes: Processes, broker: BrokerFixture, api: ApiSide, gateway: str, tmp_path: Path
) -> None:
    modbus_port, wall_port = _modbus_sim(processes, tmp_path), free_port()
    processes.start("wall", "sim", "opcua", "--profile", "av/video_wall", "--port",
                    str(wall_port), "--tick-s", "0.2")
    wait_for(lambda: port_open(wall_port), what="opc-ua simulator")
    _start(processes, broker, tmp_path, gateway, [
        {"id": "meter", "profile": str(tmp_path / "meter.yaml"), "poll_interval_s": 0.1,
         "endpoint": {"host": "127.0.0.1", "port": modbus_port}},
        {"id": "wall", "profile": "av/video_wall",
         "endpoint": {"protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{wall_port}/cityops/"}},
    ])
    wait_for(lambda: api.status.get("devices") == {"meter": "online", "wall": "online"},
             timeout_s=30, what="both devices online")

    api.command("c-write", device="meter", point="limit_kw", value=321)
    first = api.result("c-write")
    assert (first["status"], first["readback"]) == ("succeeded", 321)
    assert _register(modbus_port) == 321

    # the same id again (a redelivery): reported again, never executed again
    _set_register(modbus_port, 100)
    api.command("c-write", device="meter", point="limit_kw", value=321)
    assert api.result("c-write", 2) == first
    assert _register(modbus_port) == 100

    api.command("c-range", device="meter", point="limit_kw", value=900)
    assert api.result("c-range")["status"] == "rejected"
    assert "maximum" in api.results["c-range"][0]["detail"]
    api.command("c-ro", device="meter", point="voltage", value=1.0)
    assert api.result("c-ro")["status"] == "rejected"
    api.command("c-expired", expires_in_s=-5, device="meter", point="limit_kw", value=7)
    assert api.result("c-expired")["status"] == "expired"
    api.command("c-nodev", device="nope", point="limit_kw", value=7)
    assert api.result("c-nodev")["status"] == "rejected"
    assert _register(modbus_port) == 100, "no rejected or expired command reached the device"

    api.command("c-preset", device="wall", method="recall_preset", args={"preset": 7})
    preset = api.result("c-preset")
    assert (preset["status"], preset["readback"]) == ("succeeded", 7)
    api.command("c-source", device="wall", point="window_2_source", value=12)
    assert api.result("c-source")["readback"] == 12
    api.command("c-badarg", device="wall", method="recall_preset", args={"preset": 99})
    assert api.result("c-badarg")["status"] == "rejected"
    wait_for(lambda: api.status.get("counters", {}).get("commands_succeeded") == 3,
             what="command counters in the status")


def test_devices_come_from_the_retained_config_and_newer_versions_apply(
    processes: Processes, broker: BrokerFixture, api: ApiSide, gateway: str, tmp_path: Path
) -> None:
    port = _modbus_sim(processes, tmp_path, count=2)
    profile = dict(PROFILE, model="remote-meter")

    def device(n: int) -> dict:
        return {"id": f"meter-{n}", "profile": "remote-meter", "poll_interval_s": 0.2,
                "endpoint": {"host": "127.0.0.1", "port": port, "unit_id": n}}

    api.config({"gateway": gateway, "version": 1, "devices": [device(1)],
                "profiles": {"remote-meter": profile}})
    _start(processes, broker, tmp_path, gateway, [])
    wait_for(lambda: api.status.get("devices") == {"meter-1": "online"}, timeout_s=30,
             what="the device from the config topic")
    api.config({"gateway": gateway, "version": 2, "devices": [device(1), device(2)],
                "profiles": {"remote-meter": profile}})
    wait_for(lambda: api.status.get("devices") == {"meter-1": "online", "meter-2": "online"},
             timeout_s=30, what="version 2 applied at runtime")
    assert api.status["counters"]["config_version"] == 2
    # an invalid or older config is refused; the running one stays
    api.config({"gateway": gateway, "version": 3, "devices": [{"id": "x", "profile": "nope",
                "endpoint": {"host": "127.0.0.1"}}], "profiles": {}})
    api.config({"gateway": gateway, "version": 1, "devices": [], "profiles": {}})
    api.command("c-remote", device="meter-2", point="limit_kw", value=42)
    assert api.result("c-remote")["readback"] == 42
    assert _register(port, unit=2) == 42
    assert api.status["counters"]["config_version"] == 2
    assert set(api.status["devices"]) == {"meter-1", "meter-2"}
