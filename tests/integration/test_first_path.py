"""The foundation's end-to-end path with every hop a real process over a real socket:
Modbus simulator -> agent -> Mosquitto -> ingest worker -> TimescaleDB -> API."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import psycopg
import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from cityops import wire
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, port_open, wait_for

PROFILE = {
    "model": "e2e-meter", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "voltage", "data_type": "float32", "unit": "V",
         "address": {"table": "input_register", "offset": 0, "order": "CDAB"},
         "simulate": {"kind": "constant", "mean": 231.25}},
        {"name": "energy_kwh", "data_type": "uint32", "unit": "kWh", "scale": 0.1,
         "address": {"table": "input_register", "offset": 2, "order": "ABCD"},
         "simulate": {"kind": "constant", "mean": 12345.6}},
        {"name": "limit_kw", "data_type": "uint16", "unit": "kW", "writable": True,
         "address": {"table": "holding_register", "offset": 10}},
        {"name": "breaker_closed", "data_type": "bool", "writable": True,
         "address": {"table": "coil", "offset": 0}},
        {"name": "label", "data_type": "string", "writable": True,
         "address": {"table": "holding_register", "offset": 20, "length": 4}},
        {"name": "power_kw", "data_type": "float32", "unit": "kW",
         "address": {"table": "input_register", "offset": 4},
         "simulate": {"kind": "ramp", "mean": 10, "amplitude": 50, "period_s": 30}},
    ],
}


@pytest.fixture
def path_setup(processes: Processes, broker: BrokerFixture, tmp_path: Path) -> dict:
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
    processes.run("users", "add", "e2e-admin", "--role", "admin", stdin="correct-horse-1\n")
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
    token = client.post("/v1/auth/token", data={"username": "e2e-admin",
                                                 "password": "correct-horse-1"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    return {"gateway": gateway, "device": f"{gateway}-meter", "sim_port": sim_port,
            "password": password, "client": client}


def _latest(client: httpx.Client, device: str) -> dict:
    body = client.get(f"/v1/devices/{device}/latest").json()
    return {p["point"]: p["value"] for p in body["points"]}


def test_values_served_by_the_simulator_come_back_from_the_api(
    path_setup: dict, processes: Processes
) -> None:
    client, device = path_setup["client"], path_setup["device"]
    values = wait_for(lambda: (v := _latest(client, device)) and v["voltage"] is not None and v,
                      timeout_s=30, what="first readings through the whole path")
    assert values["voltage"] == 231.25
    assert values["energy_kwh"] == pytest.approx(12345.6)
    assert values["breaker_closed"] is False

    # change what the device serves; the API must follow with the exact values
    modbus = ModbusTcpClient("127.0.0.1", port=path_setup["sim_port"])
    assert modbus.connect()
    modbus.write_register(10, 4321, device_id=1)
    modbus.write_coil(0, True, device_id=1)
    modbus.write_registers(20, [0x5550, 0x532D, 0x4100, 0], device_id=1)  # "UPS-A"
    modbus.close()
    wait_for(lambda: _latest(client, device)["limit_kw"] == 4321, timeout_s=15,
             what="the written register to reach the API")
    latest = _latest(client, device)
    assert latest["breaker_closed"] is True
    assert latest["label"] == "UPS-A"

    ramp = client.get(f"/v1/devices/{device}/readings", params={"point": "power_kw"}).json()
    assert len({r["value"] for r in ramp["readings"]}) > 1, "values move over time"
    buckets = client.get(f"/v1/devices/{device}/readings",
                         params={"point": "voltage", "bucket": "1m"}).json()["buckets"]
    assert buckets and buckets[-1]["avg"] == pytest.approx(231.25)
    assert buckets[-1]["min"] <= buckets[-1]["avg"] <= buckets[-1]["max"]


def _publish(broker: BrokerFixture, gateway: str, password: str, payloads: list[bytes]) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                         client_id=wire.gateway_client_id(gateway), protocol=paho.MQTTv5)
    client.username_pw_set(gateway, password)
    client.connect("127.0.0.1", broker.broker.port)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(wire.telemetry_topic(gateway), payload, qos=1).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_duplicate_batch_stored_once_and_malformed_goes_to_dead_letters(
    path_setup: dict, broker: BrokerFixture, database_url: str, processes: Processes
) -> None:
    gateway, device = path_setup["gateway"], path_setup["device"]
    # this test publishes as the gateway itself, under the gateway's one client id: the agent
    # would take the connection back (the broker lets a gateway hold one)
    for name, proc in processes.procs:
        if name == "agent":
            proc.terminate()
            proc.wait(10)
    ts = int(time.time() * 1000) - 3_600_000  # an hour ago: no clash with live polling
    good = orjson.dumps({"stream": str(uuid.uuid4()), "seq": 1, "readings": [
        {"device": device, "point": "voltage", "ts": ts, "value": 199.5}]})
    later = orjson.dumps({"stream": str(uuid.uuid4()), "seq": 1, "readings": [
        {"device": device, "point": "voltage", "ts": ts + 1, "value": 200.5}]})
    _publish(broker, gateway, path_setup["password"], [good, good, b"{oops", later])

    def stored(at: int) -> int:
        with psycopg.connect(database_url) as conn:
            return conn.execute(
                "SELECT count(*) FROM readings r JOIN points p ON p.id = r.point_id"
                " WHERE p.device_id = %s AND r.time = to_timestamp(%s / 1000.0)",
                (device, at)).fetchone()[0]

    wait_for(lambda: stored(ts + 1) == 1, timeout_s=15, what="the good batch after a bad one")
    assert stored(ts) == 1, "a batch delivered twice is stored once"
    with psycopg.connect(database_url) as conn:
        late = conn.execute("SELECT late, readings FROM ingested_batches WHERE gateway_id = %s"
                            " AND seq = 1 AND stream::text = %s",
                            (gateway, orjson.loads(good)["stream"])).fetchone()
    assert late == (1, 1), "a reading stamped an hour before its commit counts as late"
    with psycopg.connect(database_url) as conn:
        reason, payload, topic = conn.execute(
            "SELECT reason, payload, topic FROM dead_letters WHERE payload = %s", (b"{oops",)
        ).fetchone()
    assert (reason, bytes(payload), topic) == ("invalid_json", b"{oops",
                                               wire.telemetry_topic(gateway))
