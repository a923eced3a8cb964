"""Computing indicators for their periods into `indicator_values`.

Each indicator's query runs in its own read-only transaction with a statement time-out; its
rows are `(dimension, value)` (a NULL dimension is the county as a whole: GROUP BY ROLLUP
gives both) or a single `(value)`. A query that fails or times out records a failed run with
the error, and no value: a failed period is never shown as zero. Each value gets its light
from the thresholds, and a red or yellow light raises (a green one clears) the indicator's
alarm (indicators/alarms.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.calendar import COUNTY_TZ, WorkCalendar
from indicators import alarms
from indicators.guard import to_psycopg
from indicators.model import last_complete, light, period_of, shift

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    code: str
    period_start: datetime
    status: str
    rows: int
    error: str | None = None


@asynccontextmanager
async def _autocommit(conn: AsyncConnection) -> AsyncIterator[None]:
    """Each indicator in transactions of its own (a READ ONLY one cannot be a savepoint of
    the caller's): the caller's open work is committed first, its mode restored after."""
    if conn.autocommit:
        yield
        return
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        await conn.commit()
    await conn.set_autocommit(True)
    try:
        yield
    finally:
        await conn.set_autocommit(False)


async def _values(conn: AsyncConnection, ind: dict, start: datetime, end: datetime,
                  timeout_ms: int) -> list[tuple[str, float]]:
    # one round trip: the transaction's settings and the query sent together (bound on the
    # client), dates and date_trunc in the county's calendar as the periods are
    text = (f"BEGIN READ ONLY; SET LOCAL statement_timeout = {int(timeout_ms)};"
            f" SET LOCAL TimeZone = '{COUNTY_TZ.key}'; {to_psycopg(ind['query'])}")
    cur = psycopg.AsyncClientCursor(conn)
    try:
        await cur.execute(text, {"start": start, "end": end})
        while cur.nextset():
            pass  # the query's rows are the last result
        rows = await cur.fetchall()
    finally:
        await conn.execute("ROLLBACK")  # read only: nothing to keep
    out = []
    for row in rows:
        dimension, value = ("", row[0]) if len(row) == 1 else (row[0], row[1])
        if value is None:
            continue  # nothing to measure in that dimension (e.g. a rate of 0/0)
        out.append(("" if dimension is None else str(dimension), float(value)))
    return out


# the values of several indicators' periods replaced, and their runs recorded, in one
# statement: one write per batch instead of one per indicator (bench-indicators: a write per
# indicator cost more than its query)
_STORE = """
WITH fresh AS (
    SELECT * FROM unnest(%(vc)s::text[], %(vp)s::timestamptz[], %(vd)s::text[],
                         %(vv)s::float8[], %(vl)s::text[])
        AS t(indicator_code, period_start, dimension, value, light)
), gone AS (
    DELETE FROM indicator_values v USING unnest(%(rc)s::text[], %(rp)s::timestamptz[])
        AS r(indicator_code, period_start)
    WHERE v.indicator_code = r.indicator_code AND v.period_start = r.period_start
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.indicator_code = v.indicator_code
                      AND f.period_start = v.period_start AND f.dimension = v.dimension)
), kept AS (
    INSERT INTO indicator_values (indicator_code, period_start, dimension, value, light,
                                  computed_at)
    SELECT indicator_code, period_start, dimension, value, light, %(now)s FROM fresh
    ON CONFLICT (indicator_code, dimension, period_start) DO UPDATE SET value = excluded.value,
        light = excluded.light, computed_at = excluded.computed_at
)
INSERT INTO indicator_runs (indicator_code, period_start, status, error, rows, seconds,
                            computed_at)
SELECT indicator_code, period_start, 'ok', NULL, rows, seconds, %(now)s
FROM unnest(%(rc)s::text[], %(rp)s::timestamptz[], %(rn)s::int[], %(rs)s::float8[])
    AS r(indicator_code, period_start, rows, seconds)
ON CONFLICT (indicator_code, period_start) DO UPDATE SET status = excluded.status,
    error = excluded.error, rows = excluded.rows, seconds = excluded.seconds,
    computed_at = excluded.computed_at
"""


async def compute(conn: AsyncConnection, ind: dict, start: datetime, now: datetime,
                  timeout_ms: int = 10_000, cal: WorkCalendar | None = None) -> Outcome:
    """One indicator, one period: values stored, lights set, alarms raised or cleared."""
    return (await compute_many(conn, [(ind, start)], now, timeout_ms, cal))[0]


async def compute_many(conn: AsyncConnection, items: list[tuple[dict, datetime]],
                       now: datetime, timeout_ms: int = 10_000,
                       cal: WorkCalendar | None = None) -> list[Outcome]:
    """Several (indicator, period) computations, their values written together."""
    async with _autocommit(conn):
        done: list[tuple[dict, datetime, list[tuple[str, float]], float]] = []
        outcomes = []
        for ind, start in items:
            began = time.perf_counter()
            end = shift(ind["frequency"], start, COUNTY_TZ)
            try:
                values = await _values(conn, ind, start, end, timeout_ms)
            except psycopg.Error as err:
                error = f"{type(err).__name__}: {str(err).strip().splitlines()[0]}"
                await _record_run(conn, ind["code"], start, "failed", error, 0, began, now)
                log.warning("indicator %s, period %s failed: %s", ind["code"], start, error)
                outcomes.append(Outcome(ind["code"], start, "failed", 0, error))
                continue
            done.append((ind, start, values, time.perf_counter() - began))
            outcomes.append(Outcome(ind["code"], start, "ok", len(values)))
        if done:
            await conn.execute(_STORE, _store_params(done, now))
            await _follow_alarms(conn, done, now, cal or WorkCalendar((), ()))
        return outcomes


def _store_params(done: list, now: datetime) -> dict:
    flat = [(ind["code"], start, d, v, light(ind, v))
            for ind, start, values, _ in done for d, v in values]
    columns = {k: [row[i] for row in flat]
               for i, k in enumerate(("vc", "vp", "vd", "vv", "vl"))}
    return {"now": now, **columns, "rc": [d[0]["code"] for d in done],
            "rp": [d[1] for d in done], "rn": [len(d[2]) for d in done],
            "rs": [d[3] for d in done]}


async def _follow_alarms(conn: AsyncConnection, done: list, now: datetime,
                         cal: WorkCalendar) -> None:
    for ind, start, values, _ in done:
        if start != last_complete(ind["frequency"], now, COUNTY_TZ):
            continue  # only the latest period speaks for the present: history alarms nobody
        async with conn.transaction():
            for dimension, value in values:
                await alarms.follow(conn, ind, dimension, value, light(ind, value), start, now,
                                    cal)


async def _record_run(conn: AsyncConnection, code: str, start: datetime, status: str,
                      error: str | None, rows: int, began: float, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO indicator_runs (indicator_code, period_start, status, error, rows, seconds,"
        " computed_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (indicator_code,"
        " period_start) DO UPDATE SET status = excluded.status, error = excluded.error,"
        " rows = excluded.rows, seconds = excluded.seconds, computed_at = excluded.computed_at",
        (code, start, status, error, rows, time.perf_counter() - began, now))


async def enabled(conn: AsyncConnection, code: str | None = None) -> list[dict]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM indicators WHERE enabled AND (%(c)s::text IS NULL OR code = %(c)s)"
        " ORDER BY code", {"c": code})
    return await cur.fetchall()


async def compute_due(conn: AsyncConnection, now: datetime, timeout_ms: int = 10_000,
                      cal: WorkCalendar | None = None) -> list[Outcome]:
    """Every enabled indicator's latest complete period, unless already computed."""
    due = []
    for ind in await enabled(conn):
        start = last_complete(ind["frequency"], now, COUNTY_TZ)
        cur = await conn.execute("SELECT 1 FROM indicator_runs WHERE indicator_code = %s"
                                 " AND period_start = %s AND status = 'ok'", (ind["code"], start))
        if await cur.fetchone() is None:
            due.append((ind, start))
    return await compute_many(conn, due, now, timeout_ms, cal)


async def backfill(conn: AsyncConnection, ind: dict, since: datetime, now: datetime,
                   timeout_ms: int = 10_000) -> list[Outcome]:
    """Every complete period from the one containing `since` up to now."""
    start = period_of(ind["frequency"], since, COUNTY_TZ)
    last = last_complete(ind["frequency"], now, COUNTY_TZ)
    items = []
    while start <= last:
        items.append((ind, start))
        start = shift(ind["frequency"], start, COUNTY_TZ)
    return await compute_many(conn, items, now, timeout_ms)
