"""SNMP end to end, every hop a real process: `cityops sim snmp` (a UPS-MIB card) -> `cityops
agent` -> Mosquitto -> `cityops ingest` -> TimescaleDB; a trap sent by Net-SNMP's snmptrap
to the agent becomes an on_battery reading, which the example rule turns into an alarm."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import psycopg
import yaml

from tests.component.snmp_kit import free_udp_port
from tests.conftest import BrokerFixture, Processes
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]
ON_BATTERY_TRAP = "1.3.6.1.2.1.33.2.0.1"


def _point_rows(database_url: str, device: str, point: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT r.value, r.quality FROM readings r JOIN points p ON p.id = r.point_id"
            " WHERE p.device_id = %s AND p.name = %s ORDER BY r.time", (device, point)).fetchall()


def _alarms(database_url: str, device: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT rule_id FROM alarms WHERE device_id = %s", (device,)).fetchall()]


def test_ups_over_snmp_reaches_the_database_and_its_trap_raises_an_alarm(
        processes: Processes, broker: BrokerFixture, database_url: str, tmp_path: Path) -> None:
    gateway, sim_port, trap_port = f"gw-{uuid.uuid4().hex[:6]}", free_udp_port(), free_udp_port()
    device = f"{gateway}-ups"
    config = {
        "gateway": gateway, "broker": {"url": broker.url},
        "queue": {"path": str(tmp_path / "queue.db"), "batch_max_wait_ms": 100},
        "devices": [{"id": device, "profile": "power/snmp_ups", "poll_interval_s": 0.5,
                     "endpoint": {"protocol": "snmp", "host": "127.0.0.1", "port": sim_port,
                                  "community": {"env": "CITYOPS_TEST_UPS_COMMUNITY"},
                                  "traps": {"port": trap_port, "community": {
                                      "env": "CITYOPS_TEST_UPS_TRAPS"}}}}],
    }
    (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
    password = broker.add_gateway(gateway)
    processes.run("registry", "load", str(tmp_path / "gw.yaml"))
    processes.run("rules", "load", str(REPO / "ingestion/rules/examples/network.yaml"))
    processes.start("sim", "sim", "snmp", "--profile", "power/snmp_ups", "--port",
                    str(sim_port), env=processes.env | {"CITYOPS_SIM_COMMUNITY": "ups-read"})
    processes.start("agent", "agent", "--config", str(tmp_path / "gw.yaml"),
                    env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": password,
                                         "CITYOPS_TEST_UPS_COMMUNITY": "ups-read",
                                         "CITYOPS_TEST_UPS_TRAPS": "ups-traps"})
    processes.start("ingest", "ingest",
                    env=processes.env | {"CITYOPS_INGEST_RULES_RELOAD_S": "0.2"})
    rows = wait_for(lambda: _point_rows(database_url, device, "battery_pct"), timeout_s=60,
                    what="battery_pct stored")
    assert rows[0] == (100.0, 0)
    assert _point_rows(database_url, device, "on_battery")[0][0] == 0.0
    assert not _alarms(database_url, device)
    # the agent listens for traps once the device is connected (readings are flowing)
    sent = subprocess.run(["snmptrap", "-v2c", "-c", "ups-traps", f"127.0.0.1:{trap_port}", "",
                           ON_BATTERY_TRAP], capture_output=True, text=True, timeout=15,
                          check=False, env={"PATH": "/usr/bin:/bin", "MIBS": "",
                                            "SNMP_PERSISTENT_DIR": str(tmp_path)})
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: (1.0, 0) in _point_rows(database_url, device, "on_battery"), timeout_s=30,
             what="on_battery true from the trap, stored")
    wait_for(lambda: "snmp-ups-on-battery" in _alarms(database_url, device), timeout_s=30,
             what="the on-battery alarm")
