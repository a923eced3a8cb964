"""Store-and-forward with every hop real: Modbus simulator -> agent -> a private Mosquitto (which
the test stops and starts) -> ingest worker -> TimescaleDB. No reading may be lost or stored
twice across a broker outage of tens of seconds, nor across kill -9 of the agent."""

from __future__ import annotations

import secrets
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from cityops.errors import StackError
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from tests.conftest import Processes
from tests.helpers import free_port, port_open, wait_for

PROFILE = {
    "model": "outage-meter", "category": "power", "protocol": "modbus",
    "points": [
        {"name": "voltage", "data_type": "float32", "unit": "V",
         "address": {"table": "input_register", "offset": 0, "order": "CDAB"},
         "simulate": {"kind": "sine", "mean": 230, "amplitude": 5, "period_s": 10}},
        {"name": "current", "data_type": "float32", "unit": "A",
         "address": {"table": "input_register", "offset": 2, "order": "DCBA"},
         "simulate": {"kind": "ramp", "mean": 10, "amplitude": 5, "period_s": 7}},
        {"name": "energy_kwh", "data_type": "uint32", "unit": "kWh", "scale": 0.1,
         "address": {"table": "input_register", "offset": 4},
         "simulate": {"kind": "ramp", "mean": 1000, "amplitude": 10, "period_s": 60}},
        {"name": "limit_kw", "data_type": "uint16", "unit": "kW", "writable": True,
         "range": {"min": 0, "max": 500}, "address": {"table": "holding_register", "offset": 10}},
        {"name": "breaker_closed", "data_type": "bool", "writable": True,
         "address": {"table": "coil", "offset": 0}},
    ],
}


class AgentStack:
    """A gateway's agent, its simulator and an ingest worker around a broker of its own."""

    def __init__(self, processes: Processes, tmp_path: Path) -> None:
        self.processes, self.tmp = processes, tmp_path
        self.gateway = f"gw-{uuid.uuid4().hex[:6]}"
        self.device = f"{self.gateway}-meter"
        self.broker = Broker(tmp_path / "broker", free_port())
        ingest_password = secrets.token_urlsafe(16)
        ensure_service_account(self.broker.state_dir, "svc-ingest", ingest_password)
        self.password = add_gateway(self.broker.state_dir, self.gateway)
        self.broker.write_config()
        self.broker.start()
        self.env = processes.env | {
            "CITYOPS_MQTT_URL": f"mqtt://127.0.0.1:{self.broker.port}",
            "CITYOPS_INGEST_MQTT_PASSWORD": ingest_password,
        }
        self.sim_port, self.metrics_port = free_port(), free_port()
        (tmp_path / "meter.yaml").write_text(yaml.safe_dump(PROFILE))
        self.config = {
            "gateway": self.gateway,
            "broker": {"url": f"mqtt://127.0.0.1:{self.broker.port}"},
            "queue": {"path": str(tmp_path / "queue.db"), "batch_max_wait_ms": 50,
                      "batch_max_readings": 100},
            "metrics_port": self.metrics_port, "status_interval_s": 1,
            "devices": [{"id": self.device, "profile": "meter.yaml", "poll_interval_s": 0.05,
                         "endpoint": {"host": "127.0.0.1", "port": self.sim_port}}],
        }
        (tmp_path / "gw.yaml").write_text(yaml.safe_dump(self.config))
        processes.run("registry", "load", str(tmp_path / "gw.yaml"))
        self.sim = processes.start("sim", "sim", "modbus", "--profile",
                                   str(tmp_path / "meter.yaml"), "--port", str(self.sim_port),
                                   "--tick-s", "0.05")
        wait_for(lambda: port_open(self.sim_port), what="simulator")
        processes.start("ingest", "ingest", env=self.env)

    def start_agent(self, name: str = "agent"):
        proc = self.processes.start(name, "agent", "--config", str(self.tmp / "gw.yaml"),
                                    env=self.env | {"CITYOPS_GATEWAY_PASSWORD": self.password})
        wait_for(lambda: port_open(self.metrics_port), what="agent metrics")
        return proc

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line.startswith("cityops_agent_"):
                name, _, value = line.rpartition(" ")
                values[name.split("{")[0]] = float(value)
        return values

    def close(self) -> None:
        self.processes.stop_all()
        self.broker.stop()


def restart(broker: Broker) -> None:
    """Start the broker again; its port (from the ephemeral range) may be held a moment by
    a client's connection attempt that Linux connected to itself."""

    def started() -> bool:
        try:
            broker.start()
        except StackError:
            return False
        return True

    wait_for(started, timeout_s=30, interval_s=0.2, what="the broker started again")


def stored(database_url: str, device: str) -> tuple[int, int]:
    """(rows, distinct (time, point) keys) of the device's readings in the database."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT (r.time, r.point_id)) FROM readings r"
            " JOIN points p ON p.id = r.point_id WHERE p.device_id = %s", (device,)
        ).fetchone()


@pytest.fixture
def stack(processes: Processes, tmp_path: Path) -> Iterator[AgentStack]:
    s = AgentStack(processes, tmp_path)
    yield s
    s.close()


def _settle(stack: AgentStack, database_url: str, expected: callable) -> int:
    """Stop the device, let the agent drain, and wait until the database holds `expected()`."""
    stack.sim.send_signal(signal.SIGTERM)
    wait_for(lambda: stack.metrics()["cityops_agent_device_up"] == 0, what="device offline")

    def settled() -> bool:
        m = stack.metrics()
        return m["cityops_agent_queue_readings"] == 0 and stored(database_url, stack.device)[0] \
            == expected()

    try:
        wait_for(settled, timeout_s=60, interval_s=0.3, what="every reading stored exactly once")
    except AssertionError as err:
        raise AssertionError(f"{err}: agent {stack.metrics()}, expected {expected()}, "
                             f"stored {stored(database_url, stack.device)}, "
                             f"dead letters {_dead_letters(database_url)}") from None
    rows, distinct = stored(database_url, stack.device)
    assert rows == distinct, f"no reading is stored twice: {_twice(database_url, stack.device)}"
    return rows


def test_broker_outage_loses_nothing_and_stores_nothing_twice(
    stack: AgentStack, database_url: str
) -> None:
    stack.start_agent()
    wait_for(lambda: stored(database_url, stack.device)[0] > 100, timeout_s=30,
             what="readings flowing")
    stack.broker.stop()
    # ~20 s of polling at 5 points / 50 ms lands in the queue while the broker is away
    wait_for(lambda: stack.metrics()["cityops_agent_queue_readings"] >= 2000, timeout_s=60,
             interval_s=0.5, what="a backlog in the local queue")
    assert stack.metrics()["cityops_agent_broker_connected"] == 0
    restart(stack.broker)
    wait_for(lambda: stack.metrics()["cityops_agent_queue_readings"] < 200, timeout_s=60,
             what="the backlog to drain")
    rows = _settle(stack, database_url,
                   lambda: int(stack.metrics()["cityops_agent_readings_total"]))
    assert rows >= 2100  # the flow before, the backlog, the flow after
    assert stack.metrics()["cityops_agent_dropped_readings_total"] == 0


def test_kill_9_loses_nothing_queued_and_replays_nothing_stored(
    stack: AgentStack, database_url: str
) -> None:
    agent = stack.start_agent("agent-1")
    wait_for(lambda: stored(database_url, stack.device)[0] > 50, timeout_s=30,
             what="readings flowing")
    stack.broker.stop()
    wait_for(lambda: stack.metrics()["cityops_agent_queue_readings"] >= 700, timeout_s=60,
             what="a backlog")
    agent.send_signal(signal.SIGKILL)
    agent.wait(10)
    before = stored(database_url, stack.device)[0]
    with sqlite3.connect(stack.tmp / "queue.db") as db:
        stream = db.execute("SELECT value FROM meta WHERE key = 'stream'").fetchone()[0]
        batches = dict(db.execute("SELECT seq, count FROM batches").fetchall())
    # the queue also keeps batches stored whose commit receipt had not arrived yet: those
    # are sent again and skipped by ingestion, so they do not add to the total
    with psycopg.connect(database_url) as conn:
        done = {seq for (seq,) in conn.execute(
            "SELECT seq FROM ingested_batches WHERE stream = %s", (stream,))}
    queued = sum(count for seq, count in batches.items() if seq not in done)
    assert queued >= 400
    restart(stack.broker)
    stack.start_agent("agent-2")
    # the new agent's own readings too (on a loaded machine it may start after the device
    # would otherwise have been stopped): they show it resumed after the replay
    wait_for(lambda: stack.metrics()["cityops_agent_readings_total"] > 0, timeout_s=30,
             what="the restarted agent polling")
    rows = _settle(stack, database_url, lambda: before + queued + int(
        stack.metrics()["cityops_agent_readings_total"]))
    assert rows > before + queued


def _dead_letters(database_url: str) -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT reason, detail FROM dead_letters ORDER BY 1 DESC LIMIT 3"
                            ).fetchall()


def _twice(database_url: str, device: str) -> list:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT r.time, p.name, array_agg(r.value), array_agg(r.quality) FROM readings r"
            " JOIN points p ON p.id = r.point_id WHERE p.device_id = %s"
            " GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5", (device,)).fetchall()
