"""Migration 017 and the readings query with rollups as continuous aggregates (PGlite, a
Timescale-licensed TimescaleDB) against the platform's tables (the local Apache build)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from infra.db.migrate import migrate
from ingestion import rollups
from tests.pglite_timescale.conftest import without_postgis
from tests.pglite_timescale.rollup_helpers import (
    assert_exact,
    insert,
    minutes_between,
    new_point,
    refresh_caggs,
    refresh_tables,
)

COLUMNS = """SELECT column_name, data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position"""


def test_the_switch_makes_continuous_aggregates_on_the_licensed_build(
    timescale_url: str, database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        apache_columns = {t: conn.execute(COLUMNS, (t,)).fetchall()
                          for t in ("rollup_1m", "rollup_1h")}
    with psycopg.connect(timescale_url) as conn:
        assert conn.execute("SELECT current_setting('timescaledb.license')").fetchone() == (
            "timescale",)
        assert 17 in {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        caggs = conn.execute(
            "SELECT view_name, materialized_only, view_definition"
            " FROM timescaledb_information.continuous_aggregates ORDER BY 1").fetchall()
        assert [(name, only) for name, only, _ in caggs] == [
            ("rollup_1h", False), ("rollup_1m", False)]
        assert "FROM rollup_1m" in caggs[0][2]  # hierarchical: hours from minutes
        assert "FROM readings" in caggs[1][2] and "quality < 2" in caggs[1][2]
        for table, columns in apache_columns.items():
            assert conn.execute(COLUMNS, (table,)).fetchall() == columns
        policies = conn.execute(
            "SELECT config->>'start_offset' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_refresh_continuous_aggregate'").fetchall()
        assert policies == [(f"{rollups.CAGG_REFRESH_WINDOW_DAYS} days",)] * 2
        # 018's covering index, made on the aggregates (it ran after 017 on this new database)
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'rollup_1%'"
            " ORDER BY 1").fetchall()
        assert [name for name, _ in indexes] == [
            "rollup_1h_point_bucket_cover", "rollup_1m_point_bucket_cover"]
        assert all("_materialized_hypertable_" in d and "INCLUDE" in d for _, d in indexes)


async def test_the_switch_leaves_the_tables_on_the_apache_build(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert await rollups.licence(conn) == "apache"
        assert not await rollups.uses_caggs(conn)
        cur = await conn.execute(
            "SELECT c.relname, c.relkind, h.hypertable_name IS NOT NULL FROM pg_class c"
            " LEFT JOIN timescaledb_information.hypertables h ON h.hypertable_name = c.relname"
            " WHERE c.relname IN ('rollup_1m', 'rollup_1h') ORDER BY 1")
        assert await cur.fetchall() == [("rollup_1h", "r", True), ("rollup_1m", "r", True)]
        cur = await conn.execute("SELECT version FROM schema_migrations WHERE version = 17")
        assert await cur.fetchone() == (17,)  # applied, and did nothing here


async def test_bucketed_equals_raw_aggregates_over_continuous_aggregates(
    timescale_url: str,
) -> None:
    _, pid = new_point(timescale_url)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    # off the minute (3 s past), as readings mostly are: a bucket's start holds no reading
    times = [hour + timedelta(seconds=3 + 10 * i)
             for i in range(int((now - hour).total_seconds()) // 10)]
    # some bad readings and some without a value: neither counts
    rows = [(t, None if i % 71 == 0 else float(i % 37), 2 if i % 53 == 0 else i % 2)
            for i, t in enumerate(times)]
    refreshed = hour + timedelta(hours=2)
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        insert(conn, pid, rows)
        refresh_caggs(conn, refreshed)  # the last hour stays unmaterialized: real-time
    ranges = [(hour + timedelta(seconds=30), now + timedelta(minutes=1)),
              (hour, now.replace(second=0, microsecond=0)),
              (hour + timedelta(minutes=7), hour + timedelta(minutes=13, seconds=5))]
    await assert_exact(timescale_url, pid, ranges)

    # late readings in a minute and an hour already materialized: the aggregates are behind
    # until the next refresh, and the answers are exact meanwhile
    late_minute, late_hour = hour + timedelta(minutes=20), hour + timedelta(minutes=65)
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        insert(conn, pid, [(late_minute + timedelta(seconds=5), 500.0, 0),
                            (late_hour + timedelta(seconds=1), -7.0, 0)])
        seen = conn.execute("SELECT max FROM rollup_1m WHERE point_id = %s AND bucket = %s",
                            (pid, late_minute)).fetchone()
        assert seen[0] < 500.0  # the aggregate itself has not seen it
    await assert_exact(timescale_url, pid, ranges)
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        refresh_caggs(conn, refreshed)
    await assert_exact(timescale_url, pid, ranges)

    # the minutes refreshed before the hours (each policy runs on its own schedule): the
    # hours are behind the minutes under them, which TimescaleDB records by bucket start
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        insert(conn, pid, [(hour + timedelta(minutes=95, seconds=7), 900.0, 0)])
        conn.execute("CALL refresh_continuous_aggregate('rollup_1m', NULL, %s::timestamptz)",
                     (refreshed,))
    await assert_exact(timescale_url, pid, ranges)

    with psycopg.connect(timescale_url, autocommit=True) as conn:
        refresh_caggs(conn, refreshed)
    await assert_exact(timescale_url, pid, ranges)
    async with await psycopg.AsyncConnection.connect(timescale_url, autocommit=True) as aconn:
        assert await rollups._stale_from(aconn, 3600, pid, hour, refreshed) is None

        # proof that the aggregates are what is read: alter materialized rows by hand
        await _tamper(aconn, "rollup_1h", pid, hour + timedelta(hours=1), 2e6)
        hourly = await rollups.bucketed(aconn, pid, 3600, hour, refreshed)
        assert [r[3] for r in hourly] == [500.0, 2e6]
        await _tamper(aconn, "rollup_1m", pid, hour + timedelta(minutes=10), 1e6)
        by_minute = {r[0]: r for r in await rollups.bucketed(aconn, pid, 60, hour, refreshed)}
        assert by_minute[hour + timedelta(minutes=10)][3] == 1e6
        # ... which TimescaleDB records as a change under rollup_1h: hours from raw again
        hourly = await rollups.bucketed(aconn, pid, 3600, hour, refreshed)
        assert [r[3] for r in hourly] == [500.0, 900.0]


async def _tamper(conn: psycopg.AsyncConnection, view: str, pid: int, bucket: datetime,
                  value: float) -> None:
    cur = await conn.execute(
        "SELECT format('%%I.%%I', materialization_hypertable_schema,"
        " materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = %s", (view,))
    (table,) = await cur.fetchone()
    cur = await conn.execute(f"UPDATE {table} SET max = %s WHERE point_id = %s AND bucket = %s",
                             (value, pid, bucket))
    assert cur.rowcount == 1


async def test_upgrade_keeps_rollups_that_readings_no_longer_hold(start_pglite, tmp_path: Path,
                                                                  ) -> None:
    url = start_pglite().url
    # a database from before 017: the platform's tables, 018's index
    migrate(url, without_postgis(tmp_path / "before", skip=(17,)))
    _, pid = new_point(url)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    old = now - timedelta(days=400)
    with psycopg.connect(url, autocommit=True) as conn:
        insert(conn, pid, [(now - timedelta(minutes=30) + timedelta(seconds=20 * i), float(i), 0)
                            for i in range(60)])
        # a minute whose readings retention has dropped: only the rollups hold it
        conn.execute("INSERT INTO rollup_1m VALUES (%s, %s, 42, 1, 42, 42)", (old, pid))
    await refresh_tables(url, minutes_between(now - timedelta(minutes=30), now))
    assert [m.version for m in migrate(url, without_postgis(tmp_path / "all"))] == [17]

    with psycopg.connect(url) as conn:
        kept = conn.execute("SELECT bucket, sum FROM rollup_1m_before_caggs WHERE bucket < %s",
                            (now - timedelta(days=1),)).fetchall()
        assert kept == [(old, 42.0)]
        assert conn.execute("SELECT to_regclass('rollup_1h_before_caggs')").fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM rollup_dirty").fetchone() == (0,)
        names = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'rollup_1%cover'")}
        assert names == {"rollup_1m_point_bucket_cover", "rollup_1h_point_bucket_cover",
                         "rollup_1m_before_caggs_cover"}
    async with await psycopg.AsyncConnection.connect(url) as aconn:
        assert await rollups.uses_caggs(aconn)
    await assert_exact(url, pid, [(now - timedelta(hours=1), now + timedelta(minutes=1))])
