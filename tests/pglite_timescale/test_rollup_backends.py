"""The same platform code on both rollup backends: continuous aggregates (PGlite, a
Timescale-licensed TimescaleDB) and the platform's tables (the local Apache build)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cityops.errors import ConfigError
from ingestion.decode import DecodedBatch
from ingestion.jobs import Jobs
from ingestion.metrics import IngestMetrics
from ingestion.retention import apply_retention
from ingestion.rollups import _stale_from, bucketed
from ingestion.sink import Sink
from tests.pglite_timescale.rollup_helpers import (
    assert_exact,
    insert,
    minutes_between,
    new_point,
    refresh_caggs,
    refresh_tables,
)


@pytest.fixture(params=["caggs", "tables"])
def backend(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """(database url, rollups are continuous aggregates)."""
    if request.param == "caggs":
        return request.getfixturevalue("timescale_url"), True
    return request.getfixturevalue("database_url"), False


def _count(url: str, sql: str, params: tuple = ()) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


async def _no_publish(topic: str, payload: bytes) -> None:
    raise AssertionError(f"nothing to publish here: {topic}")


async def test_jobs_and_sink_do_dirty_minute_work_only_for_the_tables(
    backend: tuple[str, bool],
) -> None:
    url, caggs = backend
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO rollup_dirty VALUES (%s)", (minute,))
    jobs = Jobs(url, IngestMetrics(), _no_publish, offline_check_s=60, rollup_refresh_s=60,
                retention_check_s=60, retention_plan={}, rules_reload_s=60)
    try:
        await jobs._rollups()
    finally:
        await jobs.close()
    assert jobs.caggs is caggs
    # the platform's refresh consumes a marked minute; with aggregates it does not run at all
    left = _count(url, "SELECT count(*) FROM rollup_dirty WHERE bucket = %s", (minute,))
    assert left == (1 if caggs else 0)

    sink = Sink(url)
    await sink.connect()
    try:
        assert sink.marks_minutes is not caggs
    finally:
        await sink.close()


@pytest.mark.parametrize("marks_minutes", [True, False])
async def test_the_sink_marks_minutes_only_when_told(database_url: str,
                                                     marks_minutes: bool) -> None:
    # the local build only: PGlite's socket server cannot take the sink's COPY, so the
    # licensed case is the decision above plus this store with the decision applied
    gateway, pid = new_point(database_url)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2, minutes=7)
    batch = DecodedBatch(gateway, str(uuid.uuid4()), 1,
                         numeric=[(int(minute.timestamp() * 1000) + 1500, pid, 3.0, 0)])
    dirty = "SELECT count(*) FROM rollup_dirty WHERE bucket = %s"
    before = _count(database_url, dirty, (minute,))
    sink = Sink(database_url)
    await sink.connect()
    sink.marks_minutes = marks_minutes
    try:
        assert (await sink.store([batch], [])).readings == 1
    finally:
        await sink.close()
    assert _count(database_url, "SELECT count(*) FROM readings WHERE point_id = %s", (pid,)) == 1
    assert _count(database_url, dirty, (minute,)) - before == (1 if marks_minutes else 0)
    assert batch.minutes == ({int(minute.timestamp()) // 60} if marks_minutes else set())


async def test_retention_drops_old_chunks_and_rollups_outlive_readings(
    backend: tuple[str, bool],
) -> None:
    url, caggs = backend
    _, pid = new_point(url)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # readings keep 180 days: the daily chunk holding that limit stays, the one before goes
    kept_from = (now - timedelta(days=180)).replace(hour=0, minute=0)
    hour = kept_from - timedelta(hours=5)
    old = [(hour + timedelta(minutes=5, seconds=10 * i), float(i), 0) for i in range(10)]
    with psycopg.connect(url, autocommit=True) as conn:
        # and a reading on the first instant kept, as minute-aligned polling gives
        insert(conn, pid, [*old, (kept_from, 1.0, 0), (now - timedelta(minutes=5), 2.0, 0)])
        if caggs:
            refresh_caggs(conn, now.replace(minute=0), since=hour - timedelta(days=1))
    if not caggs:
        await refresh_tables(url, [*minutes_between(old[0][0], old[-1][0]), kept_from,
                                   now - timedelta(minutes=5)])
    window = (hour, hour + timedelta(hours=1))
    await assert_exact(url, pid, [window])  # rolled up, and readings still there

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        removed = await apply_retention(conn, {"readings": 180}, caggs)
        assert removed["readings"] >= 1
        answers = {b: await bucketed(conn, pid, b, *window) for b in (60, 3600)}
        # readings gone, rollups kept: the answers come from the rollups alone
        assert [r[4] for r in answers[60]] == [6, 4] and [r[4] for r in answers[3600]] == [10]
        assert answers[60][0][3] == 5.0 and answers[3600][0][3] == 9.0
        if caggs:
            # TimescaleDB recorded the drop as an invalidation reaching the reading kept at
            # its end: not a change, so the aggregates still answer the whole day
            cur = await conn.execute(
                "SELECT count(*) FROM"
                " _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log"
                " WHERE greatest_modified_value = %s", (int(kept_from.timestamp()) * 1_000_000,))
            assert await cur.fetchone() == (1,)
            day = (hour, kept_from + timedelta(hours=1))
            assert await _stale_from(conn, 60, pid, *day) is None
            assert await _stale_from(conn, 3600, pid, *day) is None
            with pytest.raises(ConfigError, match="readings must keep more than 7 days"):
                await apply_retention(conn, {"readings": 7, "rollup_1m": 150}, caggs)
            assert await bucketed(conn, pid, 60, *window) == answers[60]  # nothing dropped
    await assert_exact(url, pid, [(kept_from, now + timedelta(minutes=1))])

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        removed = await apply_retention(conn, {"rollup_1m": 150}, caggs)
        assert removed["rollup_1m"] >= 1
        assert await bucketed(conn, pid, 60, *window) == []
        assert await bucketed(conn, pid, 3600, *window) == answers[3600]  # kept forever
    assert _count(url, "SELECT count(*) FROM readings WHERE point_id = %s", (pid,)) == 2


