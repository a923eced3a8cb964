"""Delivery guarantees of `cityops ingest` against a real Mosquitto and PostgreSQL: load shared
by two workers, kill -9 mid-stream, a database crash and restart, redelivered batches."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from infra.db.migrate import migrate
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, wait_for
from tests.integration.ingest_helpers import (
    Gateway,
    metric,
    now_ms,
    readings_of,
    register,
    scalar,
    telemetry,
    two_free_ports,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
POINTS = [f"p{i}" for i in range(10)]


def setup_gateway(broker: BrokerFixture, database_url: str, devices: int = 5):
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gateway)
    ids = register(database_url, gateway,
                   {f"{gateway}-d{i}": POINTS for i in range(devices)})
    return gateway, password, ids


def payloads(gateway: str, messages: int, per_message: int = 50, devices: int = 5,
             stream: str | None = None) -> list[bytes]:
    """Messages whose readings are all distinct (time, point) pairs: duplicates would show."""
    stream = stream or str(uuid.uuid4())
    t0 = now_ms() - 86_400_000
    out = []
    for seq in range(1, messages + 1):
        out.append(telemetry(stream, seq, [
            (f"{gateway}-d{k % devices}", POINTS[(k // devices) % len(POINTS)],
             t0 + seq * 1000 + k // (devices * len(POINTS)), float(seq + k))
            for k in range(per_message)]))
    return out


def copy_in_progress(database_url: str) -> bool:
    return scalar(database_url, "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                  " current_database() AND query LIKE 'COPY readings%%'"
                  " AND state IN ('active', 'idle in transaction')") > 0


def test_two_workers_share_the_load_and_store_each_reading_once(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    gateways = [setup_gateway(broker, database_url) for _ in range(2)]
    base = two_free_ports()
    env = processes.env | {"CITYOPS_INGEST_METRICS_PORT": str(base)}
    processes.start("ingest-a", "ingest", env=env)
    wait_for(lambda: metric(base, "cityops_ingest_readings_total") == 0, what="worker a up")
    processes.start("ingest-b", "ingest", env=env)
    wait_for(lambda: metric(base + 1, "cityops_ingest_readings_total") == 0, what="worker b")
    wait_for(lambda: "subscribed" in processes.log("ingest-b"), what="worker b subscribed")

    senders = [Gateway(broker, gw, pw) for gw, pw, _ in gateways]
    for sender in senders:
        sender.send_many(payloads(sender.gateway, 200))
    ids = [pid for _, _, m in gateways for pid in m.values()]
    total = 2 * 200 * 50
    wait_for(lambda: readings_of(database_url, ids)[0] >= total, timeout_s=40,
             what="all readings stored")
    rows, distinct = readings_of(database_url, ids)
    assert rows == distinct == total
    a, b = (metric(port, "cityops_ingest_readings_total") for port in (base, base + 1))
    assert a > 0 and b > 0, f"both workers took a share (a={a}, b={b})"
    assert a + b == total
    assert metric(base, "cityops_ingest_commit_seconds_count") > 0
    for sender in senders:
        sender.close()


def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    gateway, password, ids = setup_gateway(broker, database_url)
    worker = processes.start("ingest", "ingest")
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gateway, password)
    messages = payloads(gateway, 3000)
    total = 3000 * 50
    publishing = threading.Thread(target=sender.send_many, args=(messages,))
    publishing.start()
    stored = wait_for(lambda: (n := readings_of(database_url, list(ids.values()))[0]) > 20_000
                      and n, timeout_s=40, what="the worker to be busy")
    # kill it while its transaction has begun writing a batch (as near as one can aim)
    wait_for(lambda: copy_in_progress(database_url), interval_s=0.001, what="a COPY under way")
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    at_kill = readings_of(database_url, list(ids.values()))[0]
    assert stored <= at_kill < total, "killed while work remained"
    publishing.join(60)
    processes.start("ingest-again", "ingest")
    wait_for(lambda: readings_of(database_url, list(ids.values()))[0] >= total, timeout_s=60,
             what="everything stored after the restart")
    rows, distinct = readings_of(database_url, list(ids.values()))
    assert rows == distinct == total
    batches = scalar(database_url, "SELECT count(*) FROM ingested_batches WHERE gateway_id = %s",
                     (gateway,))
    assert batches == 3000
    first_id = processes.log("ingest").split("ingest ", 1)[1].split(":", 1)[0]
    assert f"ingest {first_id}: subscribed" in processes.log("ingest-again"), \
        "the restarted worker resumed the same slot (and persistent session)"
    sender.close()


def test_a_batch_delivered_twice_is_stored_once_and_bad_input_is_dead_lettered(
    processes: Processes, broker: BrokerFixture, database_url: str
) -> None:
    gateway, password, ids = setup_gateway(broker, database_url, devices=1)
    port = free_port()
    processes.start("ingest", "ingest", env=processes.env | {
        "CITYOPS_INGEST_METRICS_PORT": str(port)})
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gateway, password)
    ts = now_ms() - 7_200_000
    batch = telemetry(sender.stream, 1, [(f"{gateway}-d0", "p0", ts, 1.5)])
    # the same key again, even with other contents, is a redelivery: skipped
    again = telemetry(sender.stream, 1, [(f"{gateway}-d0", "p0", ts + 1, 2.5)])
    unknown = telemetry(sender.stream, 2, [(f"{gateway}-d0", "nope", ts, 1.0)])
    # a seq beyond bigint (the database would refuse it): refused by the schema since issue
    # #22, dead-lettered, the rest of the flush stored, nothing retried forever
    poison = telemetry(sender.stream, 2**63, [(f"{gateway}-d0", "p0", ts + 2, 3.5)])
    later = telemetry(sender.stream, 3, [(f"{gateway}-d0", "p0", ts + 3, 4.5)])
    sender.send_many([batch, batch, again, b"not json", unknown, poison, later])
    wait_for(lambda: metric(port, 'cityops_ingest_dead_letters_total{reason="unknown_point"}')
             == 1, what="the unknown point dead-lettered")
    wait_for(lambda: metric(port, 'cityops_ingest_dead_letters_total{reason="schema"}') == 1,
             what="the poison message dead-lettered")
    assert metric(port, 'cityops_ingest_dead_letters_total{reason="rejected_by_database"}') == 0
    assert readings_of(database_url, [ids[(f"{gateway}-d0", "p0")]]) == (2, 2)
    assert metric(port, "cityops_ingest_duplicate_batches_total") == 2
    assert metric(port, 'cityops_ingest_dead_letters_total{reason="invalid_json"}') == 1
    with psycopg.connect(database_url) as conn:
        detail = conn.execute("SELECT detail FROM dead_letters WHERE reason = 'unknown_point'"
                              " AND topic LIKE %s", (f"%/{gateway}/%",)).fetchone()[0]
    assert "nope" in detail
    sender.close()


class OwnPostgres:
    """A throwaway PostgreSQL + TimescaleDB of this test's own, which it may crash at will
    (the shared local cluster is never stopped)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cityops-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        shutil.chown(self.dir, "postgres", "postgres")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/cityops"

    def _pg(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       capture_output=True, timeout=60, cwd=self.dir)

    def init(self) -> None:
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.dir}'\n"
                       "shared_preload_libraries = 'timescaledb'\n"
                       "timescaledb.telemetry_level = off\nmax_connections = 40\n")
        self.start()
        with psycopg.connect(self.url.replace("/cityops", "/postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE cityops")
        with psycopg.connect(self.url, autocommit=True) as c:  # as `stack up` does (superuser)
            c.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        migrate(self.url)

    def start(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l",
                 str(self.dir / "log"), "-w", "start")

    def crash(self) -> None:
        """Stop at once, as a crash would: no checkpoint, WAL replayed at the next start."""
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        pg.init()
        yield pg
    finally:
        pg.remove()


def test_database_crash_and_restart_loses_nothing(
    own_postgres: OwnPostgres, processes: Processes, broker: BrokerFixture
) -> None:
    url = own_postgres.url
    gateway, password, ids = setup_gateway(broker, url)
    port = free_port()
    env = processes.env | {"CITYOPS_DATABASE_URL": url, "CITYOPS_DATABASE_ADMIN_URL": url,
                           "CITYOPS_INGEST_METRICS_PORT": str(port),
                           "CITYOPS_INGEST_MAX_INFLIGHT_MESSAGES": "100"}
    processes.start("ingest", "ingest", env=env)
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gateway, password)
    messages = payloads(gateway, 600)
    point_ids = list(ids.values())
    sender.send_many(messages[:200])
    wait_for(lambda: readings_of(url, point_ids)[0] == 200 * 50, what="first part stored")

    own_postgres.crash()
    sender.send_many(messages[200:400])  # arrive while the database is down
    # down for several retries (backoff 0.5, 1, 2, 4 s...): the messages stay unacknowledged
    wait_for(lambda: metric(port, "cityops_ingest_db_retries_total") >= 4, timeout_s=30,
             what="the worker retrying against the absent database")
    assert metric(port, "cityops_ingest_readings_total") == 200 * 50, "nothing stored meanwhile"
    # back-pressure: the broker holds the backlog; the worker holds at most Receive Maximum
    held = metric(port, "cityops_ingest_received_messages") - metric(
        port, "cityops_ingest_messages_total")
    assert 0 < held <= 100
    own_postgres.start()
    sender.send_many(messages[400:])
    wait_for(lambda: readings_of(url, point_ids)[0] >= 600 * 50, timeout_s=60,
             what="everything stored after the restart")
    rows, distinct = readings_of(url, point_ids)
    assert rows == distinct == 600 * 50
    assert scalar(url, "SELECT count(*) FROM ingested_batches") == 600
    assert "database back" in processes.log("ingest")
    assert os.path.exists(own_postgres.dir / "log")
    sender.close()
