"""A gateway's whole delivery path with every hop real and each one stoppable by the test:
Modbus simulator -> agent -> a private Mosquitto -> ingest workers -> PostgreSQL, and the API
that records the gateway's status."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import yaml

from cityops.errors import StackError
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from tests.conftest import Processes
from tests.helpers import free_port, port_open, wait_for
from tests.integration.test_agent_outage import PROFILE


class DeliveryStack:
    def __init__(self, processes: Processes, tmp_path: Path, queue: dict | None = None,
                 poll_interval_s: float = 0.05) -> None:
        self.processes, self.tmp = processes, tmp_path
        self.gateway = f"gw-{uuid.uuid4().hex[:6]}"
        self.device = f"{self.gateway}-meter"
        self.broker = Broker(tmp_path / "broker", free_port())
        passwords = {name: secrets.token_urlsafe(16) for name in ("svc-ingest", "svc-api")}
        for name, password in passwords.items():
            ensure_service_account(self.broker.state_dir, name, password)
        self.password = add_gateway(self.broker.state_dir, self.gateway)
        self.broker.write_config()
        self.broker.start()
        self.api_port = free_port()
        self.env = processes.env | {
            "CITYOPS_MQTT_URL": f"mqtt://127.0.0.1:{self.broker.port}",
            "CITYOPS_INGEST_MQTT_PASSWORD": passwords["svc-ingest"],
            "CITYOPS_API_MQTT_PASSWORD": passwords["svc-api"],
            "CITYOPS_API_PORT": str(self.api_port),
            "CITYOPS_BROKER_STATE_DIR": str(self.broker.state_dir),
        }
        self.sim_port, self.metrics_port = free_port(), free_port()
        (tmp_path / "meter.yaml").write_text(yaml.safe_dump(PROFILE))
        config = {
            "gateway": self.gateway,
            "broker": {"url": f"mqtt://127.0.0.1:{self.broker.port}"},
            "queue": {"path": str(tmp_path / "queue.db"), "batch_max_wait_ms": 50,
                      "batch_max_readings": 100, **(queue or {})},
            "metrics_port": self.metrics_port, "status_interval_s": 1,
            "devices": [{"id": self.device, "profile": "meter.yaml",
                         "poll_interval_s": poll_interval_s,
                         "endpoint": {"host": "127.0.0.1", "port": self.sim_port}}],
        }
        (tmp_path / "gw.yaml").write_text(yaml.safe_dump(config))
        processes.run("registry", "load", str(tmp_path / "gw.yaml"))
        self.sim = processes.start("sim", "sim", "modbus", "--profile",
                                   str(tmp_path / "meter.yaml"), "--port", str(self.sim_port),
                                   "--tick-s", "0.05")
        wait_for(lambda: port_open(self.sim_port), what="simulator")

    def start(self, kind: str, name: str) -> subprocess.Popen:
        if kind == "agent":
            proc = self.processes.start(name, "agent", "--config", str(self.tmp / "gw.yaml"),
                                        env=self.env | {"CITYOPS_GATEWAY_PASSWORD": self.password})
            wait_for(lambda: port_open(self.metrics_port), what="agent metrics")
            return proc
        proc = self.processes.start(name, kind, env=self.env)
        if kind == "ingest":
            wait_for(lambda: "subscribed" in self.processes.log(name), what=f"{name} subscribed")
        elif kind == "api":
            wait_for(lambda: port_open(self.api_port), timeout_s=60, what="the API")
        return proc

    def restart_broker(self) -> None:
        """Start the broker again; its port (from the ephemeral range) may be held a moment
        by a client's connection attempt that Linux connected to itself."""

        def started() -> bool:
            try:
                self.broker.start()
            except StackError:
                return False
            return True

        wait_for(started, timeout_s=30, interval_s=0.2, what="the broker started again")

    def kill_broker(self) -> None:
        """SIGKILL: what the broker accepted but had not saved is gone."""
        pid = self.broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.broker.is_running(), what="broker dead")

    def metrics(self) -> dict[str, float]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        values = {}
        for line in text.splitlines():
            if line.startswith("cityops_agent_"):
                name, _, value = line.rpartition(" ")
                values[name.split("{")[0]] = float(value)
        return values

    def queue_files(self) -> int:
        """Bytes the agent's queue takes on disk, all of SQLite's files."""
        return sum(p.stat().st_size for p in self.tmp.glob("queue.db*"))

    def close(self) -> None:
        self.processes.stop_all()
        self.broker.stop()
