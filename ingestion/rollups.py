"""1-minute and 1-hour rollups of numeric readings, and the query that uses them.

With the Timescale-licensed build, continuous aggregates would do this; the local build is
Apache (`timescaledb.license` = 'apache'), so the platform keeps tables `rollup_1m` and
`rollup_1h` itself: the ingest transaction records the minutes it wrote in `rollup_dirty`, and
`refresh()` (one worker at a time) recomputes exactly those minutes and their hours. The query
reads a rollup for the part of a range that is complete and raw readings for the rest, so
answers are always exact. `licence()` tells which build runs; docs/ingestion.md says why
continuous aggregates are not created here even where licensed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection, AsyncCursor

MINUTE_S, HOUR_S = 60, 3600
_RAW = """SELECT time_bucket(make_interval(secs => %(b)s), time) AS bucket,
    sum(value) AS sum, count(value) AS count, min(value) AS min, max(value) AS max
    FROM readings WHERE point_id = %(p)s AND time >= %(s)s AND time < %(e)s AND quality < 2
    GROUP BY 1"""
_ROLLED = """SELECT time_bucket(make_interval(secs => %(b)s), bucket) AS bucket,
    sum(sum) AS sum, sum(count) AS count, min(min) AS min, max(max) AS max
    FROM {table} WHERE point_id = %(p)s AND bucket >= %(rs)s AND bucket < %(re)s GROUP BY 1"""


async def licence(conn: AsyncConnection) -> str:
    cur = await conn.execute("SELECT current_setting('timescaledb.license', true)")
    row = await cur.fetchone()
    return (row[0] if row else None) or "unknown"


def minutes_of(ts_ms: list[int] | set[int]) -> list[datetime]:
    return [datetime.fromtimestamp(m * 60, UTC) for m in sorted({t // 60_000 for t in ts_ms})]


def _ranges(minutes: list[datetime], step: timedelta) -> list[tuple[datetime, datetime]]:
    """Sorted bucket starts merged into [start, end) ranges of consecutive buckets."""
    out: list[tuple[datetime, datetime]] = []
    for m in minutes:
        if out and out[-1][1] == m:
            out[-1] = (out[-1][0], m + step)
        elif not out or m >= out[-1][1]:
            out.append((m, m + step))
    return out


async def refresh(conn: AsyncConnection, settle_s: float = 0) -> int:
    """Recompute the dirty minutes (older than `settle_s`) and their hours; returns minutes.

    Only the dirty rows this transaction can see are deleted, so a minute marked by an ingest
    transaction that commits meanwhile stays marked for the next round.
    """
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            "DELETE FROM rollup_dirty WHERE bucket < date_trunc('minute', now())"
            " - make_interval(secs => %s) RETURNING bucket", (settle_s,))
        minutes = sorted({r[0] for r in await cur.fetchall()})
        if not minutes:
            return 0
        for start, end in _ranges(minutes, timedelta(minutes=1)):
            await _recompute(cur, "rollup_1m", "readings", "time", MINUTE_S, start, end)
        hours = sorted({m.replace(minute=0, second=0, microsecond=0) for m in minutes})
        for start, end in _ranges(hours, timedelta(hours=1)):
            await _recompute(cur, "rollup_1h", "rollup_1m", "bucket", HOUR_S, start, end)
    return len(minutes)


async def _recompute(
    cur: AsyncCursor, table: str, source: str, column: str, step_s: int,
    start: datetime, end: datetime,
) -> None:
    await cur.execute(f"DELETE FROM {table} WHERE bucket >= %s AND bucket < %s", (start, end))
    if source == "readings":
        select = ("sum(value), count(value), min(value), max(value) FROM readings"
                  " WHERE quality < 2 AND value IS NOT NULL AND")
    else:
        select = f"sum(sum), sum(count), min(min), max(max) FROM {source} WHERE"
    await cur.execute(
        f"INSERT INTO {table} (bucket, point_id, sum, count, min, max)"
        f" SELECT time_bucket(make_interval(secs => %s), {column}), point_id, {select}"
        f" {column} >= %s AND {column} < %s GROUP BY 1, 2",
        (step_s, start, end))


def _floor(t: datetime, step_s: int) -> datetime:
    return datetime.fromtimestamp(int(t.timestamp()) // step_s * step_s, UTC)


def _ceil(t: datetime, step_s: int) -> datetime:
    floored = _floor(t, step_s)
    return floored if floored == t else floored + timedelta(seconds=step_s)


async def bucketed(
    conn: AsyncConnection, point_id: int, bucket_s: int, start: datetime, end: datetime
) -> list[tuple]:
    """(bucket, avg, min, max, count) per bucket, from the coarsest rollup that answers.

    A rollup answers buckets that are whole multiples of its step; it is read only for the
    whole steps inside [start, end) that are already rolled up (before the oldest dirty
    minute); the edges and the recent part come from raw readings.
    """
    step = HOUR_S if bucket_s % HOUR_S == 0 else MINUTE_S if bucket_s % MINUTE_S == 0 else 0
    params = {"b": bucket_s, "p": point_id, "s": start, "e": end}
    parts = [_RAW]
    if step:
        cur = await conn.execute("SELECT min(bucket) FROM rollup_dirty")
        row = await cur.fetchone()
        pending = row[0] if row and row[0] is not None else end
        rolled_start = _ceil(start, step)
        rolled_end = _floor(min(end, pending, datetime.now(UTC)), step)
        if rolled_start < rolled_end:
            table = "rollup_1h" if step == HOUR_S else "rollup_1m"
            params |= {"rs": rolled_start, "re": rolled_end}
            parts = [_RAW.replace("%(e)s", "%(rs)s"), _ROLLED.format(table=table),
                     _RAW.replace("%(s)s", "%(re)s")]
    # binary results: a day of 1-minute buckets is ~7,000 values, parsed faster as binary
    async with conn.cursor(binary=True) as cur:
        await cur.execute(
            "SELECT bucket, sum(sum) / nullif(sum(count), 0), min(min), max(max),"
            f" sum(count)::bigint FROM ({' UNION ALL '.join(parts)}) parts GROUP BY bucket"
            " HAVING sum(count) > 0 ORDER BY bucket", params)
        return await cur.fetchall()
