"""Numbers end to end, every hop a real process: API -> Mosquitto -> agent -> Modbus simulator
for commands, and simulator -> agent -> ingest -> TimescaleDB -> API for readings. A uint64
above 2**53 arrives exactly and is read back exactly; a float32 comes back as the decimal the
device holds; a text too long for its registers is refused before anything is written."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import psycopg
import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from cityops import wire
from cityops.settings import Settings
from edge_agents.drivers.modbus.codec import decode_registers
from edge_agents.drivers.modbus.config import WordOrder
from tests.conftest import BrokerFixture, Processes, settings_env
from tests.helpers import free_port, port_open, wait_for

BIG = 123456789012345678  # a double would make it 123456789012345680
PROFILE = {
    "model": "precise-meter", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "temperature", "data_type": "float32", "unit": "°C",
         "address": {"table": "input_register", "offset": 0},
         "simulate": {"kind": "constant", "mean": 24.8}},
        {"name": "counter", "data_type": "uint64", "writable": True,
         "address": {"table": "holding_register", "offset": 30, "order": "CDAB"}},
        {"name": "label", "data_type": "string", "writable": True,
         "address": {"table": "holding_register", "offset": 20, "length": 4}},
    ],
}


@pytest.fixture(scope="module")
def stack(settings: Settings, broker: BrokerFixture,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One stack for the module's tests: starting four processes is most of their time."""
    tmp_path = tmp_path_factory.mktemp("precision")
    processes = Processes(tmp_path, settings_env(settings))
    try:
        yield _start(processes, broker, tmp_path)
    finally:
        processes.stop_all()


def _start(processes: Processes, broker: BrokerFixture, tmp_path: Path) -> dict:
    gateway, sim_port = f"gw-{uuid.uuid4().hex[:6]}", free_port()
    (tmp_path / "meter.yaml").write_text(yaml.safe_dump(PROFILE))
    config = {
        "gateway": gateway, "site": "command-centre", "department": "urban-management",
        "broker": {"url": broker.url},
        "queue": {"path": str(tmp_path / "queue.db"), "batch_max_wait_ms": 100},
        "devices": [{"id": f"{gateway}-meter", "profile": "meter.yaml", "poll_interval_s": 0.2,
                     "endpoint": {"host": "127.0.0.1", "port": sim_port, "unit_id": 1}}],
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    password = broker.add_gateway(gateway)
    processes.run("registry", "load", str(tmp_path / "gw.yaml"))
    processes.run("users", "add", "precise-admin", "--role", "admin", stdin="correct-horse-1\n")
    processes.start("sim", "sim", "modbus", "--profile", str(tmp_path / "meter.yaml"),
                    "--port", str(sim_port), "--tick-s", "0.1")
    wait_for(lambda: port_open(sim_port), what="simulator")
    processes.start("agent", "agent", "--config", str(tmp_path / "gw.yaml"),
                    env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": password})
    processes.start("ingest", "ingest")
    api_port = free_port()
    processes.start("api", "api", "--port", str(api_port))
    wait_for(lambda: port_open(api_port), timeout_s=60, what="api")
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
    token = client.post("/v1/auth/token", data={"username": "precise-admin",
                                                 "password": "correct-horse-1"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return {"gateway": gateway, "device": f"{gateway}-meter", "sim_port": sim_port,
            "client": client}


def _registers(port: int, offset: int, count: int) -> list[int]:
    modbus = ModbusTcpClient("127.0.0.1", port=port)
    assert modbus.connect()
    try:
        return modbus.read_holding_registers(offset, count=count, device_id=1).registers
    finally:
        modbus.close()


def _finished(client: httpx.Client, command_id: str) -> dict:
    return wait_for(
        lambda: (c := client.get(f"/v1/commands/{command_id}").json())["state"]
        not in ("pending", "sent") and c, timeout_s=20, what="the command's result")


def test_a_uint64_command_reaches_the_device_exactly_and_is_read_back_exactly(
    stack: dict,
) -> None:
    client, device = stack["client"], stack["device"]
    sent = client.post(f"/v1/devices/{device}/commands",
                       json={"point": "counter", "value": BIG})
    assert sent.status_code == 202, sent.text
    assert sent.json()["value"] == BIG
    command = _finished(client, sent.json()["id"])
    assert (command["state"], command["readback"]) == ("succeeded", BIG), command
    registers = _registers(stack["sim_port"], 30, 4)
    assert decode_registers(registers, "uint64", WordOrder.CDAB) == BIG

    # readings are doubles (docs/wire.md#numbers): above 2**53 the API serves the double it
    # stored, not an int that looks exact but is not the device's (123456789012345680)
    def served() -> float | int | None:
        points = client.get(f"/v1/devices/{device}/latest").json()["points"]
        return next(p["value"] for p in points if p["point"] == "counter") or None

    counter = wait_for(served, timeout_s=20, what="the counter's new reading")
    assert isinstance(counter, float) and counter == float(BIG), counter
    too_big = client.post(f"/v1/devices/{device}/commands",
                          json={"point": "counter", "value": 2**64})
    assert too_big.status_code == 422
    assert "outside what a uint64 holds" in too_big.json()["detail"]


def test_a_text_too_long_is_refused_by_api_and_agent_and_nothing_is_written(
    stack: dict, broker: BrokerFixture,
) -> None:
    client, device = stack["client"], stack["device"]
    refused = client.post(f"/v1/devices/{device}/commands",
                          json={"point": "label", "value": "PUMP-HALL-2"})
    assert refused.status_code == 422
    assert "at most 8 bytes" in refused.json()["detail"]
    # straight to the agent over the broker, as a caller that skipped the API's check
    results: list[dict] = []
    mqtt = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                       client_id=f"t-{uuid.uuid4().hex[:8]}")
    mqtt.username_pw_set("svc-api", broker.passwords["svc-api"])
    mqtt.on_message = lambda _c, _u, msg: results.append(orjson.loads(msg.payload))
    mqtt.connect("127.0.0.1", broker.broker.port)
    mqtt.loop_start()
    try:
        command_id = str(uuid.uuid4())
        mqtt.subscribe(wire.command_result_topic(stack["gateway"], command_id), qos=1)
        body = {"device": device, "point": "label", "value": "PUMP-HALL-2",
                "expires_at": int((time.time() + 30) * 1000)}
        mqtt.publish(wire.command_topic(stack["gateway"], command_id), orjson.dumps(body),
                     qos=1).wait_for_publish(10)
        wait_for(lambda: results, timeout_s=20, what="the agent's answer")
    finally:
        mqtt.loop_stop()
        mqtt.disconnect()
    assert results[0]["status"] == "rejected"
    assert "at most 8 bytes" in results[0]["detail"]
    assert _registers(stack["sim_port"], 20, 4) == [0, 0, 0, 0], "nothing was written"


def test_a_float32_reading_is_stored_and_served_as_the_devices_decimal(
    stack: dict, database_url: str,
) -> None:
    client, device = stack["client"], stack["device"]

    def latest() -> float | None:
        points = client.get(f"/v1/devices/{device}/latest").json()["points"]
        return next(p["value"] for p in points if p["point"] == "temperature")

    assert wait_for(latest, timeout_s=30, what="the first reading") == 24.8
    raw = client.get(f"/v1/devices/{device}/readings", params={"point": "temperature"})
    assert {r["value"] for r in raw.json()["readings"]} == {24.8}
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT DISTINCT r.value FROM readings r JOIN points p ON p.id = r.point_id"
            " WHERE p.device_id = %s AND p.name = 'temperature'", (device,)).fetchall()
    assert stored == [(24.8,)], "not 24.799999237060547"
