"""Helpers for the rollup tests, on either backend: a point of its own, readings inserted,
rollups brought up to date the way each backend does it, answers compared with raw ones."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from ingestion import rollups
from tests.integration.ingest_helpers import register

RAW = """SELECT time_bucket(make_interval(secs => %s), time) AS b, avg(value), min(value),
    max(value), count(value) FROM readings WHERE point_id = %s AND time >= %s AND time < %s
    AND quality < 2 AND value IS NOT NULL GROUP BY b ORDER BY b"""


def new_point(url: str) -> tuple[str, int]:
    """(gateway, point id) registered for this test alone."""
    gateway, device = f"gw-{uuid.uuid4().hex[:6]}", f"d-{uuid.uuid4().hex[:6]}"
    return gateway, register(url, gateway, {device: ["a"]})[(device, "a")]


def insert(conn: psycopg.Connection, pid: int,
           rows: list[tuple[datetime, float | None, int]]) -> None:
    """(time, value, quality) rows. INSERT rather than the sink's COPY: PGlite's socket
    server cannot take COPY FROM STDIN."""
    conn.execute(
        "INSERT INTO readings (time, point_id, value, quality) SELECT t, %s, v, q"
        " FROM unnest(%s::timestamptz[], %s::float8[], %s::int2[]) AS r(t, v, q)",
        (pid, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]))


def refresh_caggs(conn: psycopg.Connection, until: datetime,
                  since: datetime | None = None) -> None:
    """What the refresh policies do in the background (PGlite runs no background workers).
    `conn` must be in autocommit: a refresh cannot run inside a transaction."""
    for view in ("rollup_1m", "rollup_1h"):
        conn.execute(f"CALL refresh_continuous_aggregate('{view}', %s::timestamptz,"
                     " %s::timestamptz)", (since, until))


async def refresh_tables(url: str, minutes: list[datetime]) -> None:
    """The platform's own refresh of the given minutes (as the ingest transaction marks them)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("INSERT INTO rollup_dirty SELECT unnest(%s::timestamptz[])",
                           (minutes,))
        await conn.commit()
        await rollups.refresh(conn)


def minutes_between(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(second=0, microsecond=0)
    return [first + timedelta(minutes=i)
            for i in range(int((end - first).total_seconds() // 60) + 1)]


async def assert_exact(url: str, pid: int, ranges: list[tuple[datetime, datetime]],
                       bucket_sizes: tuple[int, ...] = (60, 300, 3600, 7200, 45)) -> None:
    """bucketed() equals aggregates over the raw readings, for every range and bucket size."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for start, end in ranges:
            for bucket_s in bucket_sizes:
                want = await (await conn.execute(RAW, (bucket_s, pid, start, end))).fetchall()
                got = await rollups.bucketed(conn, pid, bucket_s, start, end)
                assert [r[0] for r in got] == [r[0] for r in want], (bucket_s, start, end)
                for g, w in zip(got, want, strict=True):
                    assert g[1] == pytest.approx(w[1]) and g[2:] == w[2:], (bucket_s, g, w)
