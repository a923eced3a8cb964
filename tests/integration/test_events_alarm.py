"""An alarm from a simulated device opens a city event, end to end with real processes:
Modbus simulator -> agent -> Mosquitto -> ingest (rule, alarm, outbox) -> internal topic ->
`cityops events watch` -> events table -> API. Clearing the alarm does not close the event."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from cityops.principal import Role
from tests.component.test_events_kit import api_client, cst
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, port_open, wait_for

PROFILE = {
    "model": "ev-breaker", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "load_kw", "data_type": "uint16", "unit": "kW", "writable": True,
         "address": {"table": "holding_register", "offset": 10}},
    ],
}


@pytest.fixture
def plant(processes: Processes, broker: BrokerFixture, tmp_path: Path) -> dict:
    gateway, sim_port = f"gw-ev-{uuid.uuid4().hex[:6]}", free_port()
    device = f"{gateway}-breaker"
    (tmp_path / "breaker.yaml").write_text(yaml.safe_dump(PROFILE))
    config = {
        "gateway": gateway, "site": "pump-station-3", "department": "water-bureau",
        "broker": {"url": broker.url},
        "queue": {"path": str(tmp_path / "queue.db"), "batch_max_wait_ms": 50},
        "devices": [{"id": device, "profile": "breaker.yaml", "poll_interval_s": 0.2,
                     "endpoint": {"host": "127.0.0.1", "port": sim_port, "unit_id": 1}}],
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    rule = f"ev-overload-{uuid.uuid4().hex[:6]}"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"rules": [{
        "id": rule, "kind": "threshold", "severity": "critical", "title": "breaker overload",
        "target": {"devices": [device], "point": "load_kw"}, "above": 100, "clear": 90,
        "regroup_s": 0,
    }]}))
    password = broker.add_gateway(gateway)
    processes.run("registry", "load", str(tmp_path / "gw.yaml"))
    processes.run("rules", "load", str(tmp_path / "rules.yaml"))
    processes.start("sim", "sim", "modbus", "--profile", str(tmp_path / "breaker.yaml"),
                    "--port", str(sim_port), "--tick-s", "0.1")
    wait_for(lambda: port_open(sim_port), what="simulator")
    return {"gateway": gateway, "device": device, "rule": rule, "sim_port": sim_port,
            "password": password, "config": tmp_path / "gw.yaml"}


def _write_load(port: int, value: int) -> None:
    modbus = ModbusTcpClient("127.0.0.1", port=port)
    assert modbus.connect()
    modbus.write_register(10, value, device_id=1)
    modbus.close()


def _events_of(url: str, rule: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, state, channel, urgency, category_code FROM events"
            " WHERE reporter = %s ORDER BY id", (f"rule:{rule}",)).fetchall()


def _actions(url: str, event: int) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT action FROM event_transitions WHERE event_id = %s"
                            " ORDER BY id", (event,)).fetchall()
    return [r[0] for r in rows]


def test_an_alarm_opens_one_event_and_clearing_it_does_not_close_it(
    plant: dict, processes: Processes, settings, database_url: str
) -> None:
    with api_client(settings, cst(2026, 11, 23, 10, 0)) as api:
        api.person("ev-alarm-disp", Role.DISPATCHER)
        api.person("ev-alarm-viewer", Role.VIEWER)
        mapped = api.ok("ev-alarm-disp", "PUT", f"/v1/event-alarm-rules/{plant['rule']}",
                        json={"category_code": "F01.03", "group_by": "device"})
        assert mapped["rule_id"] == plant["rule"]
        assert api.call("ev-alarm-viewer", "PUT", f"/v1/event-alarm-rules/{plant['rule']}",
                        json={"category_code": "F01.03"}).status_code == 403
    processes.start("events", "events", "watch", "--client-id", f"ev-{uuid.uuid4().hex[:6]}")
    wait_for(lambda: "subscribed" in processes.log("events"), timeout_s=20,
             what="the events watcher's subscription")
    processes.start("agent", "agent", "--config", str(plant["config"]),
                    env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": plant["password"]})
    processes.start("ingest", "ingest")
    _write_load(plant["sim_port"], 150)  # overload: the rule raises a critical alarm
    events = wait_for(lambda: _events_of(database_url, plant["rule"]), timeout_s=40,
                      what="the alarm to open an event")
    event, state, channel, urgency, category = events[0]
    assert (state, channel, urgency, category) == ("reported", "sensor", "urgent", "F01.03")

    _write_load(plant["sim_port"], 20)  # back to normal: the alarm clears
    wait_for(lambda: "alarm_cleared" in _actions(database_url, event), timeout_s=30,
             what="the cleared alarm to be noted on the event")
    _write_load(plant["sim_port"], 160)  # raised again: same group, event still open
    wait_for(lambda: "alarm_raised" in _actions(database_url, event)
             or "alarm_reopened" in _actions(database_url, event), timeout_s=30,
             what="the second alarm to annotate the open event")
    assert len(_events_of(database_url, plant["rule"])) == 1, "one open event per alarm group"
    assert _events_of(database_url, plant["rule"])[0][1] == "reported", "clearing never closes"
    assert _actions(database_url, event)[0] == "report"
