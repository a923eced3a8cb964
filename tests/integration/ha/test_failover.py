"""kill -9 of the primary's postgres while readings flow through the real broker and an ingest
worker: Patroni promotes the synchronous standby, the worker and the API find the new primary
through their multi-host URL, and every reading the broker acknowledged is stored exactly
once."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import bearer
from tests.conftest import BrokerFixture, Processes
from tests.helpers import free_port, wait_for
from tests.integration.ha.conftest import HaFixture
from tests.integration.ingest_helpers import (
    Gateway,
    metric,
    now_ms,
    readings_of,
    register,
    telemetry,
)

POINTS = [f"p{i}" for i in range(10)]
MESSAGES, PER_MESSAGE, FIRST = 600, 50, 100
CHUNK = 20  # messages published (and acknowledged by the broker) at a time after the first


def _payloads(gateway: str) -> list[bytes]:
    """Every reading a distinct (time, point) pair, so a duplicate would show."""
    stream, t0 = str(uuid.uuid4()), now_ms() - 3_600_000
    return [telemetry(stream, seq, [
        (f"{gateway}-d{k % 5}", POINTS[(k // 5) % len(POINTS)], t0 + seq * 1000 + k // 50,
         float(seq * 100 + k)) for k in range(PER_MESSAGE)]) for seq in range(1, MESSAGES + 1)]


def _longest_pause_s(url: str, gateway: str) -> float:
    """The longest time between two consecutive stored batches of the gateway: how long
    ingestion stood still around the failover."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT coalesce(extract(epoch FROM max(gap)), 0) FROM (SELECT stored_at - lag("
            "stored_at) OVER (ORDER BY stored_at) AS gap FROM ingested_batches"
            " WHERE gateway_id = %s) g", (gateway,)).fetchone()[0]


def _publish_paced(sender: Gateway, payloads: list[bytes], stop: threading.Event) -> None:
    """The load goes on across the failover: a chunk, its PUBACKs, a short pause, the next."""
    for start in range(0, len(payloads), CHUNK):
        sender.send_many(payloads[start:start + CHUNK])
        stop.wait(0.1)


def test_the_api_reads_from_the_standby_and_writes_to_the_primary(
    ha: HaFixture, ha_settings: Settings
) -> None:
    ha.cluster.wait_synchronous(60)
    admin = bearer(ha_settings, "admin")
    with TestClient(create_app(ha_settings)) as client:
        assert client.get("/v1/alarms", headers=admin).status_code == 200

        async def in_recovery(pool) -> bool:
            async with pool.connection() as conn:
                return (await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone())[0]

        state = client.app.state
        assert client.portal.call(in_recovery, state.read_pool) is True, "reads: the standby"
        assert client.portal.call(in_recovery, state.pool) is False, "writes: the primary"


def test_kill_9_of_the_primary_during_ingestion_loses_and_duplicates_nothing(
    ha: HaFixture, ha_processes: Processes, broker: BrokerFixture, ha_settings: Settings
) -> None:
    processes = ha_processes
    url, cluster = ha.url, ha.cluster
    cluster.wait_synchronous(60)  # another test may have failed over just before
    gateway = f"gw-ha-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gateway)
    ids = list(register(url, gateway, {f"{gateway}-d{i}": POINTS for i in range(5)}).values())
    port = free_port()
    processes.start("ingest", "ingest", env=processes.env | {
        "CITYOPS_INGEST_METRICS_PORT": str(port)})
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender, payloads = Gateway(broker, gateway, password), _payloads(gateway)
    sender.send_many(payloads[:FIRST])
    wait_for(lambda: readings_of(url, ids)[0] == FIRST * PER_MESSAGE, what="first part stored")

    admin = bearer(ha_settings, "admin")
    with TestClient(create_app(ha_settings)) as client:
        assert client.get("/v1/alarms", headers=admin).status_code == 200
        old = cluster.leader()["name"]
        stop = threading.Event()
        publisher = threading.Thread(target=_publish_paced, args=(sender, payloads[FIRST:], stop))
        publisher.start()
        wait_for(lambda: readings_of(url, ids)[0] > (FIRST + CHUNK) * PER_MESSAGE,
                 what="ingestion under way")
        killed_at = time.monotonic()
        cluster.kill_postgres(old)
        publisher.join(60)
        assert not publisher.is_alive(), "the broker kept acknowledging publishes throughout"
        wait_for(lambda: (cluster.leader() or {"name": old})["name"] != old, timeout_s=30,
                 what="the synchronous standby promoted")
        wait_for(lambda: readings_of(url, ids)[0] >= MESSAGES * PER_MESSAGE, timeout_s=30,
                 what="every acknowledged reading stored after the failover")
        stored_s = time.monotonic() - killed_at
        wait_for(lambda: client.get("/v1/alarms", headers=admin).status_code == 200,
                 timeout_s=max(1.0, 30 - stored_s), what="the API answering after failover")
    rows, distinct = readings_of(url, ids)
    assert rows == distinct == MESSAGES * PER_MESSAGE
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM ingested_batches WHERE gateway_id = %s",
                            (gateway,)).fetchone()[0] == MESSAGES
    pause = _longest_pause_s(url, gateway)
    assert pause < 30, f"ingestion stood still {pause:.1f} s"
    assert metric(port, "cityops_ingest_db_retries_total") >= 1, "the worker saw the failover"
    sender.close()
