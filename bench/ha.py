"""`make bench-ha`: the cost of a synchronous standby, and how long a failover stops the platform.

On a private Patroni cluster (etcd + primary + standby, free ports, a temporary folder) and a
private Mosquitto, with a real `cityops ingest` worker and the API in process:
1. readings/s: the worker's drain rate of a backlog of 50-reading messages (published while
   the worker is stopped with SIGSTOP, timed from 10 % to 90 % committed), alternately with
   Patroni's synchronous mode off (`rps_single`: a commit waits for the primary's disk only)
   and on (`rps_sync_standby`: also for the standby's), the rounds interleaved so that the
   load of other processes on the machine falls on both alike;
2. the API's p99 of GET /v1/alarms and the p99 of a one-row commit, in each mode;
3. `failover_s`: kill -9 of the primary's postmaster under a paced stream of readings; the
   longest pause between two stored batches (ingestion standing still), and the time until
   the API answers again.
Writes bench/results/ha.json. The ratio rps_sync_standby / rps_single is the cost of safety;
target >= 0.75, and failover under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as paho
import psycopg

from cityops import wire
from infra.broker.accounts import add_gateway, ensure_service_account
from infra.broker.process import Broker
from infra.db.migrate import migrate
from infra.ha.cluster import HaCluster, Layout, Member
from infra.ha.database import ensure_database

REPO = Path(__file__).parents[1]
RESULTS = REPO / "bench" / "results" / "ha.json"
DEVICES, POINTS, PER_MESSAGE = 20, 10, 50


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception:  # noqa: S110 (a database in failover answers with errors)
            pass
        time.sleep(0.02)
    raise SystemExit(f"bench-ha: {what} not reached within {timeout_s} s")


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]


class Rig:
    """The cluster, a broker, a registered gateway, an ingest worker and the API."""

    def __init__(self, root: Path) -> None:
        self.root = root
        layout = Layout(root / "ha", free_port(), free_port(),
                        [Member(f"pg{i}", free_port(), free_port()) for i in range(2)],
                        scope=f"bench-{secrets.token_hex(3)}", throwaway=True,
                        parameters={"shared_buffers": "1GB", "max_wal_size": "4GB"})
        (root / "ha").mkdir()
        (root / "broker").mkdir()
        self.cluster = HaCluster(layout, secrets.token_urlsafe(16), secrets.token_urlsafe(16))
        self.broker = Broker(root / "broker", free_port())
        self.gateway, self.stream, self.seq = "gw-bench-ha", str(uuid.uuid4()), 0
        self.worker: subprocess.Popen | None = None
        self._poll: psycopg.Connection | None = None

    def start(self) -> None:
        self.cluster.start()
        self.cluster.wait_leader(120)
        self.url = ensure_database(self.cluster, "cityops", secrets.token_urlsafe(16), "cityops")
        migrate(self.url)
        self.cluster.wait_synchronous(120)
        services = {n: secrets.token_urlsafe(16) for n in ("svc-ingest", "svc-api")}
        for name, password in services.items():
            ensure_service_account(self.broker.state_dir, name, password)
        gateway_password = add_gateway(self.broker.state_dir, self.gateway)
        self.broker.write_config()
        self.broker.start()
        self._register()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")} | {
            "CITYOPS_ENV_FILE": "/nonexistent", "CITYOPS_DATABASE_URL": self.url,
            "CITYOPS_DATABASE_ADMIN_URL": self.url, "CITYOPS_STATE_DIR": str(self.root),
            "CITYOPS_MQTT_URL": f"mqtt://127.0.0.1:{self.broker.port}",
            "CITYOPS_INGEST_MQTT_PASSWORD": services["svc-ingest"],
            "CITYOPS_API_MQTT_PASSWORD": services["svc-api"],
            "CITYOPS_JWT_SECRET": secrets.token_urlsafe(48)}
        log = (self.root / "ingest.log").open("ab")
        self.worker = subprocess.Popen([sys.executable, "-m", "cli", "ingest"], cwd=REPO,
                                       env=self.env, stdout=log, stderr=subprocess.STDOUT)
        wait(lambda: "subscribed" in (self.root / "ingest.log").read_text(), 60,
             "the worker subscribed")
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5,
                                  client_id=wire.gateway_client_id(self.gateway))
        self.client.max_inflight_messages_set(1000)
        self.client.username_pw_set(self.gateway, gateway_password)
        self.client.connect("127.0.0.1", self.broker.port)
        self.client.loop_start()

    def _register(self) -> None:
        with psycopg.connect(self.url) as conn, conn.transaction():
            conn.execute("INSERT INTO gateways (id) VALUES (%s)", (self.gateway,))
            conn.execute("INSERT INTO profiles (id, protocol, category, body)"
                         " VALUES ('bench', 'mqtt', 'test', '{}')")
            for d in range(DEVICES):
                conn.execute("INSERT INTO devices (id, gateway_id, profile_id) VALUES"
                             " (%s, %s, 'bench')", (f"d{d}", self.gateway))
                for p in range(POINTS):
                    conn.execute("INSERT INTO points (device_id, name, data_type) VALUES"
                                 " (%s, %s, 'float32')", (f"d{d}", f"p{p}"))

    def payloads(self, messages: int) -> list[bytes]:
        t0 = int(time.time() * 1000) - 3_600_000
        out = []
        for _ in range(messages):
            self.seq += 1
            out.append(orjson.dumps({"stream": self.stream, "seq": self.seq, "readings": [
                {"device": f"d{k % DEVICES}", "point": f"p{(k // DEVICES) % POINTS}",
                 "ts": t0 + self.seq, "value": float(k)} for k in range(PER_MESSAGE)]}))
        return out

    def publish(self, payloads: list[bytes]) -> None:
        infos = [self.client.publish(wire.telemetry_topic(self.gateway), p, qos=1)
                 for p in payloads]
        for info in infos:
            info.wait_for_publish(60)

    def batches(self) -> int:
        """Batches stored, on one kept connection (a new one per poll would cost more than
        the count); after a failover the connection is made again, to the new primary."""
        try:
            if self._poll is None or self._poll.closed:
                self._poll = psycopg.connect(self.url, autocommit=True)
            return self._poll.execute("SELECT count(*) FROM ingested_batches").fetchone()[0]
        except psycopg.OperationalError:
            self._poll = None
            raise

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.send_signal(signal.SIGCONT)
            self.worker.terminate()
            self.worker.wait(30)
        self.broker.stop()
        self.cluster.crash_stop()


def set_synchronous(rig: Rig, on: bool) -> None:
    """Patroni's dynamic configuration, as an operator would change it (PATCH /config)."""
    member = rig.cluster.layout.members[0]
    request = urllib.request.Request(
        f"http://127.0.0.1:{member.rest_port}/config", method="PATCH",
        data=json.dumps({"synchronous_mode": on}).encode(),
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()  # noqa: S310 (loopback)

    def applied() -> bool:
        with psycopg.connect(rig.url) as conn:
            names = conn.execute("SHOW synchronous_standby_names").fetchone()[0]
        return bool(names) == on and (not on or rig.cluster.synchronous())

    wait(applied, 60, f"synchronous mode {'on' if on else 'off'}")


def drain_rate(rig: Rig, messages: int) -> float:
    """Readings/s of the worker catching up with a backlog, from 10 % to 90 % committed."""
    assert rig.worker is not None
    start = rig.batches()
    rig.worker.send_signal(signal.SIGSTOP)
    try:
        rig.publish(rig.payloads(messages))
    finally:
        rig.worker.send_signal(signal.SIGCONT)
    low, high = start + messages // 10, start + messages * 9 // 10
    wait(lambda: rig.batches() >= low, 120, "10 % of the backlog")
    t0 = time.monotonic()
    wait(lambda: rig.batches() >= high, 300, "90 % of the backlog")
    rate = (high - low) * PER_MESSAGE / (time.monotonic() - t0)
    wait(lambda: rig.batches() >= start + messages, 120, "the whole backlog")
    return rate


def commit_p99_ms(rig: Rig, commits: int) -> float:
    with psycopg.connect(rig.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_ha_commits (n int)")
        samples = []
        for n in range(commits):
            t0 = time.perf_counter()
            conn.execute("INSERT INTO bench_ha_commits VALUES (%s)", (n,))
            samples.append((time.perf_counter() - t0) * 1000)
    return p99(samples)


def api_p99_ms(client, headers: dict[str, str], requests: int) -> float:
    samples = []
    for _ in range(requests):
        t0 = time.perf_counter()
        assert client.get("/v1/alarms", headers=headers).status_code == 200
        samples.append((time.perf_counter() - t0) * 1000)
    return p99(samples)


def failover(rig: Rig, client, headers: dict[str, str]) -> dict:
    """kill -9 of the primary's postmaster while a gateway publishes steadily."""
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            rig.publish(rig.payloads(20))
            stop.wait(0.05)  # pacing of the load, about 400 messages/s at most

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        wait(lambda: rig.batches() > 0, 30, "ingestion under way")
        begin = rig.batches()
        wait(lambda: rig.batches() > begin + 100, 30, "ingestion under way")
        old = rig.cluster.leader()["name"]
        killed = time.monotonic()
        rig.cluster.kill_postgres(old)
        wait(lambda: client.get("/v1/alarms", headers=headers).status_code == 200
             and (rig.cluster.leader() or {"name": old})["name"] != old, 60, "the API back")
        api_s = time.monotonic() - killed
        after = wait(lambda: rig.batches(), 60, "the stored batches readable")
        wait(lambda: rig.batches() > after + 100, 60, "ingestion going on")
    finally:
        stop.set()
        publisher.join(120)
    with psycopg.connect(rig.url) as conn:
        pause = conn.execute(
            "SELECT extract(epoch FROM max(gap)) FROM (SELECT stored_at - lag(stored_at)"
            " OVER (ORDER BY stored_at) AS gap FROM ingested_batches) g").fetchone()[0]
    return {"failover_s": round(float(pause), 2), "api_failover_s": round(api_s, 2),
            "promoted": rig.cluster.leader()["name"] != old}


def admin_headers(rig: Rig) -> dict[str, str]:
    from api.auth import issue_token
    from cityops.principal import Principal, Role

    with psycopg.connect(rig.url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (username, password_hash, role)"
                     " VALUES ('bench', '!bench', 'admin')")
        version = conn.execute("SELECT auth_version FROM users WHERE username = 'bench'"
                               ).fetchone()[0]
    token = issue_token(Principal("bench", Role.ADMIN, version=version),
                        rig.env["CITYOPS_JWT_SECRET"], 3600)
    return {"Authorization": f"Bearer {token}"}


def measure(rig: Rig, args: argparse.Namespace) -> dict:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from cityops.settings import load_settings

    os.environ.update(rig.env)
    headers = admin_headers(rig)
    figures: dict[str, list[float]] = {}
    with TestClient(create_app(load_settings())) as client:
        drain_rate(rig, args.messages // 4)  # warm-up: first chunks, caches, plans
        for _ in range(args.rounds):
            for mode, on in (("single", False), ("sync_standby", True)):
                set_synchronous(rig, on)
                figures.setdefault(f"rps_{mode}", []).append(drain_rate(rig, args.messages))
                figures.setdefault(f"api_p99_ms_{mode}", []).append(
                    api_p99_ms(client, headers, args.requests))
                figures.setdefault(f"commit_p99_ms_{mode}", []).append(
                    commit_p99_ms(rig, args.requests))
                print(mode, {k: v[-1] for k, v in figures.items() if k.endswith(mode)},
                      file=sys.stderr, flush=True)
        result = {k: round(statistics.median(v), 1) for k, v in figures.items()}
        result["rounds"] = {k: [round(x, 1) for x in v] for k, v in figures.items()}
        result |= failover(rig, client, headers)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=4000, help="backlog per drain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="per p99 figure")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cityops-bench-ha-"))
    root.chmod(0o755)  # the members run as postgres
    rig = Rig(root)
    try:
        rig.start()
        result = measure(rig, args)
    finally:
        rig.stop()
        shutil.rmtree(root, ignore_errors=True)
    result["sync_over_single"] = round(result["rps_sync_standby"] / result["rps_single"], 3)
    result["loadavg_1m"] = os.getloadavg()[0]
    result["settings"] = {"messages": args.messages, "readings_per_message": PER_MESSAGE,
                          "rounds": args.rounds, "requests": args.requests}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
