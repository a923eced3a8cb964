"""The BRIN time index on readings (migration 091): in place of the B-tree, summarized by the
rollup refresh, and used by the queries that filter by time alone, while per-point queries
keep the (point_id, time) B-tree."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg

from datafoundation.catalogue.data import rows as catalogue_rows
from ingestion import rollups
from tests.api_kit import unique
from tests.integration.ingest_helpers import register


def _plan(conn: psycopg.Connection, query: str, params: tuple) -> str:
    conn.execute("SET enable_seqscan = off")  # a tiny table would be read whole anyway
    try:
        rows = conn.execute("EXPLAIN " + query, params).fetchall()
    finally:
        conn.execute("RESET enable_seqscan")
    return "\n".join(r[0] for r in rows)


def test_the_time_index_is_a_brin_the_refresh_summarizes(database_url: str) -> None:
    gateway, profile = unique("gw"), unique("profile")
    ids = register(database_url, gateway, {f"{gateway}-d": ["a", "b"]}, profile=profile)
    # four hours inside one day's chunk that no other test writes into: "a day ago" put the
    # window in today's chunk from 23:00 UTC, beside the suite's readings of "now", and the
    # planner weighed that chunk's BRIN against the B-tree by their data, not this test's
    start = (datetime.now(UTC) - timedelta(days=5)).replace(hour=1, minute=0, second=0,
                                                            microsecond=0)
    with psycopg.connect(database_url) as conn:
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'readings'")}
        assert "readings_time_brin" in indexes and "readings_time_idx" not in indexes
        with conn.cursor().copy("COPY readings (time, point_id, value) FROM STDIN") as copy:
            for s in range(0, 4 * 3600, 2):
                for pid in ids.values():
                    copy.write_row((start + timedelta(seconds=s), pid, float(s)))
        conn.execute("INSERT INTO rollup_dirty SELECT generate_series(%s::timestamptz,"
                     " %s, interval '1 minute')", (start, start + timedelta(hours=4, minutes=-1)))
        conn.commit()

    async def refresh() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as aconn:
            # the session database is shared: other tests' dirty minutes are refreshed too
            assert await rollups.refresh(aconn) >= 240
    asyncio.run(refresh())

    with psycopg.connect(database_url, autocommit=True) as conn:
        # the refresh summarized every new page range: nothing is left to summarize
        left = conn.execute(
            "SELECT sum(brin_summarize_new_values(i.indexrelid)) FROM show_chunks('readings')"
            " c(chunk) JOIN pg_index i ON i.indrelid = c.chunk JOIN pg_class ic"
            " ON ic.oid = i.indexrelid WHERE ic.relam = (SELECT oid FROM pg_am"
            " WHERE amname = 'brin')").fetchone()[0]
        assert left == 0
        rolled = conn.execute("SELECT sum(count) FROM rollup_1m WHERE point_id = ANY(%s)",
                              (list(ids.values()),)).fetchone()[0]
        assert rolled == 2 * 4 * 3600 // 2
        conn.execute("ANALYZE readings")
        at = (start + timedelta(hours=1), start + timedelta(hours=1, seconds=5))
        by_time = _plan(conn, rollups._ADD_SLICE, at)
        assert "readings_time_brin" in by_time, by_time
        one_point = _plan(conn, "SELECT time, value FROM readings WHERE point_id = %s"
                          " AND time >= %s AND time < %s ORDER BY time",
                          (ids[(f"{gateway}-d", "a")], *at))
        assert "readings_point_time_idx" in one_point, one_point

    # the catalogue's newest rows of a profile (a LIMIT by time, which the BRIN cannot walk in
    # order): the same rows as an exact sort, whether found in the first window or not
    async def newest(until: datetime, limit: int) -> list[tuple]:
        async with await psycopg.AsyncConnection.connect(database_url) as aconn:
            found = await catalogue_rows(aconn, {"source_ref": profile, "code": "-",
                                                 "source_kind": "readings"},
                                         start, until, limit)
        return [(r["time"], r["point"], r["value"]) for r in found]

    with psycopg.connect(database_url) as conn:
        for until, limit in ((start + timedelta(hours=4), 30), (start + timedelta(hours=6), 500),
                             (start + timedelta(hours=6), 100_000)):
            exact = conn.execute(
                "SELECT r.time, p.name, r.value FROM readings r JOIN points p ON p.id ="
                " r.point_id WHERE p.id = ANY(%s) AND r.time >= %s AND r.time <= %s"
                " ORDER BY r.time DESC, p.name LIMIT %s",
                (list(ids.values()), start, until, limit)).fetchall()
            got = asyncio.run(newest(until, limit))
            assert sorted(got, key=lambda r: (-r[0].timestamp(), r[1])) == exact
            assert len(got) == min(limit, 2 * 4 * 3600 // 2)
