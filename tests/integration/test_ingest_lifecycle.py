"""Data lifecycle: rollups kept by the worker and used by the readings query, and retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingestion import rollups
from tests.conftest import BrokerFixture, Processes
from tests.helpers import await_for, wait_for
from tests.integration.ingest_helpers import Gateway, now_ms, register, scalar

RAW = """SELECT time_bucket(make_interval(secs => %s), time) AS b, avg(value), min(value),
    max(value), count(*) FROM readings WHERE point_id = %s AND time >= %s AND time < %s
    AND quality < 2 GROUP BY b ORDER BY b"""


@pytest.fixture
def worker(processes: Processes, broker: BrokerFixture, database_url: str):
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    password = broker.add_gateway(gateway)
    ids = register(database_url, gateway, {f"{gateway}-d": ["a", "b"]})
    processes.start("ingest", "ingest", env=processes.env | {
        "CITYOPS_INGEST_ROLLUP_REFRESH_S": "0.3", "CITYOPS_INGEST_RETENTION_CHECK_S": "0.5",
        "CITYOPS_INGEST_RETENTION_DAYS": '{"readings": 180}',
        # the retention test sends 400-day-old readings: let them past the time window
        "CITYOPS_INGEST_MAX_PAST_S": str(500 * 86400)})
    wait_for(lambda: "subscribed" in processes.log("ingest"), what="worker subscribed")
    sender = Gateway(broker, gateway, password)
    yield sender, ids, f"{gateway}-d"
    sender.close()


def _same(got: list[tuple], want: list[tuple]) -> None:
    assert [r[0] for r in got] == [r[0] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g[1] == pytest.approx(w[1]) and g[2:] == w[2:]


async def test_rollups_answer_bucketed_queries_exactly_and_follow_late_data(
    worker, database_url: str
) -> None:
    sender, ids, device = worker
    pid = ids[(device, "a")]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    base = int(hour.timestamp() * 1000)
    sender.send([(device, "a", base + i * 10_000, float(i % 37)) for i in range(540)])  # 90 min
    # deadlines, not durations: the refresh runs at a duty cycle that a loaded machine stretches
    wait_for(lambda: scalar(database_url, "SELECT coalesce(sum(count), 0) FROM rollup_1m"
                            " WHERE point_id = %s", (pid,)) == 540, timeout_s=60,
             what="1-minute rollup")
    wait_for(lambda: scalar(database_url, "SELECT coalesce(sum(count), 0) FROM rollup_1h"
                            " WHERE point_id = %s", (pid,)) == 540, timeout_s=60,
             what="1-hour rollup")
    start, end = hour + timedelta(seconds=30), hour + timedelta(minutes=85, seconds=20)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for bucket_s in (60, 300, 3600, 45):
            want = await (await conn.execute(RAW, (bucket_s, pid, start, end))).fetchall()
            _same(await rollups.bucketed(conn, pid, bucket_s, start, end), want)

        # proof that the rollups are what is read: mark one minute and one hour by hand
        minute = hour + timedelta(minutes=10)
        await conn.execute("UPDATE rollup_1m SET max = 1e6 WHERE point_id = %s AND bucket = %s",
                           (pid, minute))
        await conn.execute("UPDATE rollup_1h SET max = 2e6 WHERE point_id = %s AND bucket = %s",
                           (pid, hour + timedelta(hours=1)))
        await conn.commit()
        by_minute = {r[0]: r for r in await rollups.bucketed(conn, pid, 60, start, end)}
        assert by_minute[minute][3] == 1e6
        hourly = await rollups.bucketed(conn, pid, 3600, hour, hour + timedelta(hours=2))
        assert [r[3] for r in hourly] == [36, 2e6]
        # no whole hour inside the unaligned range: all of it comes from raw readings
        edge = await rollups.bucketed(conn, pid, 3600, start, end)
        assert [r[3] for r in edge] == [36, 36]

        # a late reading in that minute: answered from raw readings until re-rolled, then
        # from the recomputed rollup; either way the true maximum
        sender.send([(device, "a", int(minute.timestamp() * 1000) + 5_000, 500.0)])

        async def minute_max() -> float:
            rows = {r[0]: r for r in await rollups.bucketed(conn, pid, 60, start, end)}
            await conn.commit()
            return rows[minute][3]

        await await_for(lambda: _eq(minute_max(), 500.0), what="late data in the answer")
        wait_for(lambda: scalar(database_url, "SELECT count(*) FROM rollup_dirty"
                                " WHERE bucket = %s", (minute,)) == 0, what="minute re-rolled")
        assert await minute_max() == 500.0
        assert scalar(database_url, "SELECT max FROM rollup_1m WHERE point_id = %s AND"
                      " bucket = %s", (pid, minute)) == 500.0


async def _eq(value, expected) -> bool:
    return (await value) == expected


def test_retention_drops_old_chunks_and_old_batch_keys(worker, database_url: str) -> None:
    sender, ids, device = worker
    pid = ids[(device, "b")]
    old = now_ms() - 400 * 86_400_000
    sender.send([(device, "b", old + i * 1000, 1.0) for i in range(10)])
    sender.send([(device, "b", now_ms() - 60_000, 2.0)])
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM ingested_batches"
                            " WHERE gateway_id = %s", (sender.gateway,)) == 2, what="stored")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE ingested_batches SET stored_at = now() - interval '40 days'"
                     " WHERE gateway_id = %s AND seq = 1", (sender.gateway,))
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM readings WHERE point_id = %s",
                            (pid,)) == 1, timeout_s=20, what="the 400-day-old chunk dropped")
    wait_for(lambda: scalar(database_url, "SELECT count(*) FROM ingested_batches"
                            " WHERE gateway_id = %s", (sender.gateway,)) == 1,
             what="the 40-day-old batch key deleted (30 days by default)")
    assert scalar(database_url, "SELECT value FROM readings WHERE point_id = %s", (pid,)) == 2.0


def test_reading_chunks_are_not_vacuumed_for_inserts_alone(database_url: str) -> None:
    """Migration 012: every chunk of the raw readings tables, those made before and after,
    carries autovacuum_vacuum_insert_threshold = -1 (an insert-only vacuum of a hot chunk
    logged whole pages and stalled commits); the rollups keep the default."""
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    pid = register(database_url, gateway, {f"{gateway}-d": ["a"]})[(f"{gateway}-d", "a")]
    long_ago = datetime.now(UTC) - timedelta(days=900 + uuid.uuid4().int % 100)
    with psycopg.connect(database_url) as conn:
        for at in (long_ago, datetime.now(UTC)):  # the first makes a chunk of its own
            conn.execute("INSERT INTO readings (time, point_id, value) VALUES (%s, %s, 1)",
                         (at, pid))
            conn.execute("INSERT INTO readings_text (time, point_id, value) VALUES (%s, %s, 'x')",
                         (at, pid))
        conn.commit()
        options = {table: conn.execute(
            "SELECT array_agg(c.reloptions::text) FROM show_chunks(%s) AS s(chunk)"
            " JOIN pg_class c ON c.oid = s.chunk", (table,)).fetchone()[0]
            for table in ("readings", "readings_text", "rollup_1m")}
    for table in ("readings", "readings_text"):
        assert len(options[table]) >= 2
        assert all("autovacuum_vacuum_insert_threshold=-1" in (o or "") for o in options[table])
    assert not any("autovacuum_vacuum_insert" in (o or "") for o in options["rollup_1m"] or [])
