"""Onboarding and commands end to end, every hop a real process over a real socket:
register a gateway through the API -> an agent started with only its id, the broker address
and the issued credentials takes its devices from the retained config -> readings flow ->
the broker refuses the gateway's publishes under another gateway's topics -> a command goes
API -> broker -> agent -> Modbus simulator and comes back with the value read back; a preset
runs its steps in order; Server-Sent Events carry readings and command results. The API runs
as two worker processes, as a production install would on this machine's two cores, so
requests land on either and commands sent at once through both still reach the device in the
order they were accepted."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import pytest
import yaml

from cityops import wire
from tests.api_kit import METER_PROFILE
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, port_open, wait_for


@pytest.fixture
def site(processes: Processes, broker: BrokerFixture, tmp_path: Path) -> dict:
    processes.env["CITYOPS_BROKER_STATE_DIR"] = str(broker.broker.state_dir)
    processes.run("users", "add", "t-onboard", "--role", "admin", stdin="correct-horse-9\n")
    processes.start("ingest", "ingest")
    api_port = free_port()
    processes.start("api", "api", "--port", str(api_port),
                    env=processes.env | {"CITYOPS_API_WORKERS": "2"})
    wait_for(lambda: port_open(api_port), timeout_s=60, what="api")
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
    token = client.post("/v1/auth/token", data={"username": "t-onboard",
                                                 "password": "correct-horse-9"}).json()
    client.headers["Authorization"] = f"Bearer {token['access_token']}"
    (tmp_path / "meter.yaml").write_text(yaml.safe_dump(METER_PROFILE))
    sim_port = free_port()
    processes.start("sim", "sim", "modbus", "--profile", str(tmp_path / "meter.yaml"),
                    "--port", str(sim_port), "--tick-s", "0.1")
    wait_for(lambda: port_open(sim_port), what="simulator")
    res = client.post("/v1/profiles", json=METER_PROFILE)
    assert res.status_code in (201, 409), res.text
    # the audit log is the audit administrator's alone (三员分立)
    processes.run("users", "add", "t-onboard-audit", "--role", "audit_admin",
                  stdin="correct-horse-9\n")
    auditor = client.post("/v1/auth/token", data={"username": "t-onboard-audit",
                                                   "password": "correct-horse-9"}).json()
    return {"client": client, "sim_port": sim_port, "api_port": api_port,
            "auditor": {"Authorization": f"Bearer {auditor['access_token']}"}}


def _start_agent(processes: Processes, tmp_path: Path, gateway: str, mqtt: dict) -> None:
    # only the id, the broker address and the credentials: no devices in the file
    config = {"gateway": gateway, "broker": {"url": mqtt["url"]},
              "queue": {"path": str(tmp_path / f"{gateway}.db"), "batch_max_wait_ms": 100},
              "status_interval_s": 1}
    (tmp_path / f"{gateway}.yaml").write_text(yaml.safe_dump(config))
    processes.start(f"agent-{gateway}", "agent", "--config", str(tmp_path / f"{gateway}.yaml"),
                    env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": mqtt["password"]})


def _onboard(site: dict, processes: Processes, tmp_path: Path) -> tuple[str, str, dict]:
    client = site["client"]
    res = client.post("/v1/gateways", json={"id": f"gw-{uuid.uuid4().hex[:6]}"})
    assert res.status_code == 201, res.text
    gateway, mqtt = res.json()["gateway"]["id"], res.json()["mqtt"]
    device = f"{gateway}-meter"
    res = client.post("/v1/devices", json={
        "id": device, "gateway": gateway, "profile": METER_PROFILE["model"],
        "address": {"host": "127.0.0.1", "port": site["sim_port"], "unit_id": 1},
        "poll_interval_s": 0.2})
    assert res.status_code == 201, res.text
    _start_agent(processes, tmp_path, gateway, mqtt)
    # commands to an agent that is not connected yet are not queued: they expire
    wait_for(lambda: ((client.get(f"/v1/gateways/{gateway}").json()["last_status"] or {})
                      .get("devices", {}).get(device) == "online"),
             timeout_s=30, what="the agent's status naming the device online")
    return gateway, device, mqtt


def _voltage(client: httpx.Client, device: str) -> float | None:
    points = client.get(f"/v1/devices/{device}/latest").json()["points"]
    return {p["point"]: p["value"] for p in points}["voltage"]


def _publish_as(broker: BrokerFixture, user: str, password: str, topic: str) -> str:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2,
                         client_id=wire.gateway_client_id(user), protocol=paho.MQTTv5)
    client.username_pw_set(user, password)
    codes: list = []
    client.on_publish = lambda _c, _u, _mid, code, _p: codes.append(code)
    client.connect("127.0.0.1", broker.broker.port)
    client.loop_start()
    try:
        client.publish(topic, b'{"forged": true}', qos=1)
        wait_for(lambda: codes, timeout_s=10, what="PUBACK")
        return codes[0].getName()
    finally:
        client.loop_stop()
        client.disconnect()


def test_a_registered_gateway_runs_from_its_config_and_stays_in_its_topics(
    site: dict, processes: Processes, broker: BrokerFixture, tmp_path: Path
) -> None:
    client = site["client"]
    gateway, device, mqtt = _onboard(site, processes, tmp_path)
    assert wait_for(lambda: _voltage(client, device), timeout_s=30,
                    what="readings of a device the agent only knows from its config") == 231.25
    gw = client.get(f"/v1/gateways/{gateway}").json()
    wait_for(lambda: client.get(f"/v1/gateways/{gateway}").json()["last_status"],
             timeout_s=15, what="the agent's status on the gateway")
    status = client.get(f"/v1/gateways/{gateway}").json()["last_status"]
    assert status["state"] == "online" and status["counters"]["config_version"] >= 2
    assert gw["config_version"] >= 2
    other = client.post("/v1/gateways", json={"id": f"gw-{uuid.uuid4().hex[:6]}"}).json()
    forged = wire.telemetry_topic(other["gateway"]["id"])
    assert _publish_as(broker, gateway, mqtt["password"], forged) == "Not authorized"
    assert _publish_as(broker, gateway, mqtt["password"],
                       wire.config_topic(gateway)) == "Not authorized"


def _command(client: httpx.Client, device: str, body: dict) -> dict:
    res = client.post(f"/v1/devices/{device}/commands", json=body)
    assert res.status_code == 202, res.text
    command_id = res.json()["id"]
    return wait_for(
        lambda: (c := client.get(f"/v1/commands/{command_id}").json())["state"]
        not in ("pending", "sent") and c, timeout_s=20, what="the command's result")


def test_commands_reach_the_device_in_order_with_read_back(
    site: dict, processes: Processes, tmp_path: Path
) -> None:
    client = site["client"]
    _gateway, device, _mqtt = _onboard(site, processes, tmp_path)
    refused = client.post(f"/v1/devices/{device}/commands",
                          json={"point": "limit_kw", "value": 900})
    assert refused.status_code == 422 and "above the maximum" in refused.json()["detail"]
    refused = client.post(f"/v1/devices/{device}/commands", json={"point": "voltage",
                                                                    "value": 1})
    assert refused.status_code == 422 and "not writable" in refused.json()["detail"]
    with httpx.stream("GET", f"http://127.0.0.1:{site['api_port']}/v1/live",
                      params={"device": device, "commands": "true", "interval_s": 0.2},
                      headers=client.headers, timeout=30) as live:
        assert live.headers["content-type"].startswith("text/event-stream")
        done = _command(client, device, {"point": "limit_kw", "value": 321})
        assert (done["state"], done["readback"]) == ("succeeded", 321), done
        events = _sse_until(live, lambda e: e[0] == "command" and e[1]["state"] == "succeeded")
    assert any(kind == "reading" and body["device"] == device for kind, body in events)
    ids = [client.post(f"/v1/devices/{device}/commands",
                       json={"point": "limit_kw", "value": v}).json()["id"] for v in (11, 12, 13)]
    finals = [wait_for(lambda i=i: (c := client.get(f"/v1/commands/{i}").json())["state"]
                       == "succeeded" and c, timeout_s=20, what="each command") for i in ids]
    assert [c["readback"] for c in finals] == [11, 12, 13]
    applied = [_instant(c["applied_at"]) for c in finals]
    assert applied == sorted(applied)
    _concurrent_commands_keep_their_order(client, device)
    method = _command(client, device, {"method": "set_limit", "args": {"kw": 77}})
    assert method["state"] == "succeeded", method
    assert wait_for(lambda: _latest(client, device, "limit_kw") == 77, timeout_s=15,
                    what="the method's write in the readings")
    audit = client.get("/v1/audit", params={"actor": "t-onboard", "limit": 200},
                       headers=site["auditor"]).json()["items"]
    sent = [a for a in audit if a["action"] == "POST /v1/devices/{device}/commands"]
    assert {a["detail"].get("command") for a in sent} >= set(ids)


def _concurrent_commands_keep_their_order(client: httpx.Client, device: str) -> None:
    """Eight commands at once over eight connections, so both API processes take some: the
    device applies them in the order the API accepted (recorded) them."""
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda v: httpx.post(
            f"{client.base_url}/v1/devices/{device}/commands", headers=client.headers,
            json={"point": "limit_kw", "value": v}, timeout=10).json()["id"], range(40, 48)))
    finals = [wait_for(lambda i=i: (c := client.get(f"/v1/commands/{i}").json())["state"]
                       == "succeeded" and c, timeout_s=20, what="each command") for i in ids]
    accepted = sorted(finals, key=lambda c: _instant(c["created_at"]))
    # the gateway's clock has millisecond steps: a tie says nothing either way
    applied = sorted(finals, key=lambda c: (_instant(c["applied_at"]), _instant(c["created_at"])))
    assert [c["id"] for c in applied] == [c["id"] for c in accepted]
    assert wait_for(lambda: _latest(client, device, "limit_kw") == accepted[-1]["value"],
                    timeout_s=15, what="the last accepted value on the device")


def _instant(text: str) -> datetime:
    """Compared as instants, not strings: a whole second is written without a fraction
    ('…19Z' sorts after '…19.022000Z' as text; CI failure of stop 27)."""
    return datetime.fromisoformat(text)


def _latest(client: httpx.Client, device: str, point: str) -> object:
    points = client.get(f"/v1/devices/{device}/latest").json()["points"]
    return {p["point"]: p["value"] for p in points}[point]


def _sse_until(stream: httpx.Response, stop) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    kind, deadline = "", time.monotonic() + 20
    for line in stream.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, orjson.loads(line[6:])))
            if stop(events[-1]):
                return events
        assert time.monotonic() < deadline, f"no matching event; got {events}"
    raise AssertionError(f"stream ended; got {events}")


def test_a_preset_runs_its_steps_in_order_as_one_audited_operation(
    site: dict, processes: Processes, tmp_path: Path
) -> None:
    client = site["client"]
    _gateway, device, _mqtt = _onboard(site, processes, tmp_path)
    name = f"briefing-{uuid.uuid4().hex[:6]}"
    bad = client.put(f"/v1/presets/{name}", json={"steps": [
        {"device": device, "point": "limit_kw", "value": 9999}]})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("steps.0:")
    res = client.put(f"/v1/presets/{name}", json={"title": "Morning briefing", "steps": [
        {"device": device, "point": "breaker_closed", "value": True},
        {"device": device, "method": "set_limit", "args": {"kw": 55}},
        {"device": device, "point": "limit_kw", "value": 66},
    ]})
    assert res.status_code == 200, res.text
    run = client.post(f"/v1/presets/{name}/run")
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    final = wait_for(lambda: (r := client.get(f"/v1/preset-runs/{run_id}").json())["state"]
                     != "running" and r, timeout_s=30, what="the preset run")
    assert final["state"] == "succeeded", final
    assert [s["state"] for s in final["steps"]] == ["succeeded"] * 3
    assert [s["readback"] for s in final["steps"]][::2] == [True, 66]
    audit = client.get("/v1/audit", params={"actor": "t-onboard", "limit": 200},
                       headers=site["auditor"]).json()["items"]
    finished = next(a for a in audit if a["action"] == "preset.finished"
                    and a["detail"]["run"] == run_id)
    assert finished["outcome"] == "ok" and len(finished["detail"]["steps"]) == 3
