"""1-minute and 1-hour rollups of numeric readings, and the query that uses them.

Two backends, chosen by migration 017 from the TimescaleDB licence and detected once per
process (`uses_caggs`):

- Timescale-licensed build: `rollup_1m` (on readings) and `rollup_1h` (on rollup_1m) are
  real-time continuous aggregates refreshed by TimescaleDB policies. The platform marks no
  dirty minutes and runs no refresh of its own.
- Apache build (the local one, `timescaledb.license` = 'apache'): the platform keeps tables
  `rollup_1m` and `rollup_1h` itself: the ingest transaction records the minutes it wrote in
  `rollup_dirty`, and `refresh()` (one worker at a time) recomputes exactly those minutes and
  their hours.

Either way `bucketed()` reads a rollup only for the part of a range it answers exactly and raw
readings for the rest, so both give the same answers. What "exactly" needs differs: the tables
are behind for the dirty minutes; an aggregate is behind where a change (a late reading) fell
below what its last refresh materialized, which TimescaleDB records as an invalidation until
the next refresh; real-time aggregation covers only what lies past that point.
docs/ingestion.md ("Rollups") gives the reasons.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
from psycopg import AsyncConnection, AsyncCursor

MINUTE_S, HOUR_S = 60, 3600
# the table backend's refresh: statements per range of dirty minutes, each at least this long
SLICES_PER_RANGE, MIN_SLICE = 12, timedelta(seconds=5)
# a slice of readings added to what earlier slices of the same refresh wrote (exact: the
# range was emptied first, and sum, count, min and max all combine)
_ADD_SLICE = """INSERT INTO rollup_1m AS r (bucket, point_id, sum, count, min, max)
    SELECT time_bucket('1 minute', time), point_id, sum(value), count(value), min(value),
        max(value)
    FROM readings WHERE quality < 2 AND value IS NOT NULL AND time >= %s AND time < %s
    GROUP BY 1, 2
    ON CONFLICT (point_id, bucket) DO UPDATE SET sum = r.sum + excluded.sum,
        count = r.count + excluded.count, min = least(r.min, excluded.min),
        max = greatest(r.max, excluded.max)"""
# the refresh tells the API processes which minutes it recomputed (api/bucket_cache.py)
NOTIFY_CHANNEL = "cityops_rollups"
# how far back the refresh policies of migration 017 reach (their start_offset)
CAGG_REFRESH_WINDOW_DAYS = 7
_RAW = """SELECT time_bucket(make_interval(secs => %(b)s), time) AS bucket,
    sum(value) AS sum, count(value) AS count, min(value) AS min, max(value) AS max
    FROM readings WHERE point_id = %(p)s AND time >= %(s)s AND time < %(e)s AND quality < 2
    GROUP BY 1"""
_ROLLED = """SELECT time_bucket(make_interval(secs => %(b)s), bucket) AS bucket,
    sum(sum) AS sum, sum(count) AS count, min(min) AS min, max(max) AS max
    FROM {table} WHERE point_id = %(p)s AND bucket >= %(rs)s AND bucket < %(re)s GROUP BY 1"""


# Where an aggregate may be behind within [rs, re): TimescaleDB's pending invalidations, read
# from its catalog (public read access; times in microseconds since 1970): those of the
# source hypertables not yet moved to an aggregate, and those of the aggregates below their
# watermark (past it, real-time aggregation answers). Ranges under rollup_1h are in minutes of
# rollup_1m, recorded by bucket start: widened to the whole minute. drop_chunks records the
# dropped range too, up to and including the start of the next chunk: a range that ends at or
# before the point's oldest reading (and starts before it) is such a drop, where the aggregate
# keeps what it had, as the platform's tables do; it is skipped (the oldest reading is looked
# up only if a range is left to check). Run against TimescaleDB 2.23 in the tests (2.19.3 has
# the same catalog); needs trigger-based invalidation (the default).
_PENDING = """WITH agg AS (
    SELECT mat_hypertable_id AS mat, raw_hypertable_id AS raw,
        CASE user_view_name WHEN 'rollup_1h' THEN 59999999 ELSE 0 END AS width
    FROM _timescaledb_catalog.continuous_agg
    WHERE user_view_schema = current_schema() AND user_view_name = ANY(%(views)s)),
  range AS (SELECT _timescaledb_functions.to_unix_microseconds(%(rs)s) AS lo,
                   _timescaledb_functions.to_unix_microseconds(%(re)s) AS hi),
  pending AS (
    SELECT l.lowest_modified_value AS lo, l.greatest_modified_value AS hi, agg.width
    FROM _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l
    JOIN agg ON l.hypertable_id = agg.raw
    UNION ALL
    SELECT l.lowest_modified_value, l.greatest_modified_value, agg.width
    FROM _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l
    JOIN agg ON l.materialization_id = agg.mat
    WHERE l.lowest_modified_value < _timescaledb_functions.cagg_watermark(agg.mat))
SELECT _timescaledb_functions.to_timestamp(greatest(pending.lo, range.lo)),
    _timescaledb_functions.to_timestamp(least(pending.hi, range.hi))
        + pending.width * interval '1 microsecond'
FROM pending, range
WHERE pending.hi >= range.lo - pending.width AND pending.lo < range.hi
    -- not (lo < oldest and hi <= oldest): one reference, so one lookup, made only if needed
    AND greatest(pending.hi - 1, pending.lo) >= (
        SELECT _timescaledb_functions.to_unix_microseconds(min(time))
        FROM readings WHERE point_id = %(p)s)"""
# the point's first reading inside one of the pending ranges: from there raw readings answer
_FIRST_IN = """SELECT min(first.time) FROM unnest(%(from)s::timestamptz[], %(to)s::timestamptz[])
    AS s(lo, hi), LATERAL (SELECT time FROM readings WHERE point_id = %(p)s
        AND time >= s.lo AND time <= s.hi AND time < %(re)s ORDER BY time LIMIT 1) first"""

# backend per database (host, port, name), decided at first use: migration 017 fixes it
_CAGGS: dict[tuple[str, int, str], bool] = {}


async def licence(conn: AsyncConnection) -> str:
    cur = await conn.execute("SELECT current_setting('timescaledb.license', true)")
    row = await cur.fetchone()
    return (row[0] if row else None) or "unknown"


async def uses_caggs(conn: AsyncConnection) -> bool:
    """True when the rollups are continuous aggregates (migration 017 on a Timescale-licensed
    build): then nothing marks dirty minutes or refreshes them. Callers ask once and keep it."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT FROM timescaledb_information.continuous_aggregates"
        " WHERE view_schema = current_schema() AND view_name = 'rollup_1m')")
    row = await cur.fetchone()
    return bool(row and row[0])


async def caggs_of(conn: AsyncConnection) -> bool:
    """uses_caggs, asked once per database and process."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    if key not in _CAGGS:
        _CAGGS[key] = await uses_caggs(conn)
    return _CAGGS[key]


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


async def refresh(conn: AsyncConnection, settle_s: float = 0, duty: float = 1.0) -> int:
    """Recompute the dirty minutes (older than `settle_s`) and their hours; returns minutes.

    Only the dirty rows this transaction can see are deleted, so a minute marked by an ingest
    transaction that commits meanwhile stays marked for the next round. `duty` < 1 spreads the
    work: after each slice of readings it waits so that it works that share of the time.
    """
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            "DELETE FROM rollup_dirty WHERE bucket < date_trunc('minute', now())"
            " - make_interval(secs => %s) RETURNING bucket", (settle_s,))
        minutes = sorted({r[0] for r in await cur.fetchall()})
        if not minutes:
            return 0
        await _summarize_time_index(cur, minutes[0])
        for start, end in _ranges(minutes, timedelta(minutes=1)):
            await _recompute_minutes(cur, start, end, duty)
        hours = sorted({m.replace(minute=0, second=0, microsecond=0) for m in minutes})
        for start, end in _ranges(hours, timedelta(hours=1)):
            await _recompute(cur, "rollup_1h", "rollup_1m", "bucket", HOUR_S, start, end)
        # delivered at the commit, so a listener that hears it reads the new rollup
        await cur.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, notify_payload(
            _ranges(minutes, timedelta(minutes=1)))))
    return len(minutes)


def notify_payload(ranges: list[tuple[datetime, datetime]]) -> str:
    """[[from, to], ...] in epoch seconds; one range spanning them all when the list would
    not fit NOTIFY's 8,000 bytes."""
    out = [[lo.timestamp(), hi.timestamp()] for lo, hi in ranges]
    text = orjson.dumps(out).decode()
    if len(text) > 7000:
        text = orjson.dumps([[out[0][0], out[-1][1]]]).decode()
    return text


# the BRIN time indexes (migration 091) of the chunks from `since` on; chunk_time_interval
# is one day, so the chunk holding `since` starts less than a day before it
_BRIN_OF_CHUNKS = """SELECT brin_summarize_new_values(i.indexrelid)
    FROM show_chunks('readings', newer_than => %s::timestamptz - interval '1 day') AS c(chunk)
    JOIN pg_index i ON i.indrelid = c.chunk
    JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
    WHERE am.amname = 'brin'"""


async def _summarize_time_index(cur: AsyncCursor, since: datetime) -> None:
    """Summarize the page ranges written since the last refresh, so that the slices below
    read only the pages of their minutes: an unsummarized range is read whole by every
    slice. Autosummarize would do it in the background, but at these rates its work-item
    queue overflows. Cheap: it reads only pages not yet summarized."""
    await cur.execute(_BRIN_OF_CHUNKS, (since,))


async def _recompute_minutes(
    cur: AsyncCursor, start: datetime, end: datetime, duty: float
) -> None:
    """The 1-minute rollup of [start, end) from readings, in time slices added together.

    At 200,000 readings/s a closed minute is 12 million readings: one statement over them
    held a core for seconds and stalled ingestion (`make bench-ingest`: p99 0.8 s). Slices
    keep each statement short, and the pause after each lets the stores go first.
    """
    await cur.execute("DELETE FROM rollup_1m WHERE bucket >= %s AND bucket < %s", (start, end))
    step = max(MIN_SLICE, (end - start) / SLICES_PER_RANGE)
    at = start
    while at < end:
        upto = min(end, at + step)
        began = time.perf_counter()
        await cur.execute(_ADD_SLICE, (at, upto))
        at = upto
        if duty < 1.0:
            await asyncio.sleep((time.perf_counter() - began) * (1 / duty - 1))


async def _recompute(
    cur: AsyncCursor, table: str, source: str, column: str, step_s: int,
    start: datetime, end: datetime,
) -> None:
    await cur.execute(f"DELETE FROM {table} WHERE bucket >= %s AND bucket < %s", (start, end))
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


async def _stale_from(
    conn: AsyncConnection, step: int, point_id: int, start: datetime, end: datetime,
) -> datetime | None:
    """From when the rollup of `step` may be behind within [start, end); None if it is not."""
    if not await caggs_of(conn):
        cur = await conn.execute("SELECT min(bucket) FROM rollup_dirty")
        row = await cur.fetchone()
        return row[0] if row else None
    params = {"views": ["rollup_1m", "rollup_1h"] if step == HOUR_S else ["rollup_1m"],
              "p": point_id, "rs": start, "re": end}
    ranges = await (await conn.execute(_PENDING, params)).fetchall()
    if not ranges:  # the usual case: one small catalog query
        return None
    cur = await conn.execute(
        _FIRST_IN, params | {"from": [r[0] for r in ranges], "to": [r[1] for r in ranges]})
    row = await cur.fetchone()
    return row[0] if row else None


async def bucketed(
    conn: AsyncConnection, point_id: int, bucket_s: int, start: datetime, end: datetime
) -> list[tuple]:
    """(bucket, avg, min, max, count) per bucket, from the coarsest rollup that answers.

    A rollup answers buckets that are whole multiples of its step; it is read only for the
    whole steps inside [start, end) that it answers exactly (before the oldest dirty minute,
    or where the aggregate has no pending invalidation); the edges and the rest come from
    raw readings.
    """
    step = HOUR_S if bucket_s % HOUR_S == 0 else MINUTE_S if bucket_s % MINUTE_S == 0 else 0
    params = {"b": bucket_s, "p": point_id, "s": start, "e": end}
    parts = [_RAW]
    if step:
        rolled_start = _ceil(start, step)
        rolled_end = _floor(min(end, datetime.now(UTC)), step)
        if rolled_start < rolled_end:
            stale = await _stale_from(conn, step, point_id, rolled_start, rolled_end)
            if stale is not None:
                rolled_end = min(rolled_end, _floor(stale, step))
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
