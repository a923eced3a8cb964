"""SQL reads of readings. Latest values come from readings_latest (migration 090), one row
per point that ingestion keeps in the transaction storing the readings: no search of
readings (no SkipScan in the Apache build, so DISTINCT ON would scan, and one index probe
per point cost ~60-120 ms for 4,000 points)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.queries.registry import where
from cityops.errors import NotFound
from ingestion import rollups

_LATEST = """
SELECT p.device_id AS device, p.name AS point, p.unit, p.data_type, l.time, l.value,
    l.text, l.quality
FROM points p LEFT JOIN readings_latest l ON l.point_id = p.id
WHERE p.device_id = ANY(%(devices)s)
ORDER BY p.device_id, p.name
"""


async def device_exists(conn: AsyncConnection, device: str) -> str | None:
    """The device's department; NotFound when it is not registered."""
    cur = await conn.execute("SELECT department_id FROM devices WHERE id = %s", (device,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"device {device!r} is not registered")
    return row[0]


async def department_and_point(
    conn: AsyncConnection, device: str, point: str
) -> tuple[str | None, int | None, str | None]:
    """(department, point id, data type) in one round trip; NotFound when the device is not
    registered, a None point id when the device has no such point (the caller checks the
    department first, so a caller of another department learns nothing about its points)."""
    cur = await conn.execute(
        "SELECT d.department_id, p.id, p.data_type FROM devices d"
        " LEFT JOIN points p ON p.device_id = d.id AND p.name = %s WHERE d.id = %s",
        (point, device),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"device {device!r} is not registered")
    return row[0], row[1], row[2]


async def latest(conn: AsyncConnection, device: str) -> list[dict]:
    return await latest_many(conn, [device])


_DEVICES_LATEST = """
SELECT d.id, d.department_id, p.name, p.unit, p.data_type, l.time, l.value, l.text, l.quality
FROM devices d LEFT JOIN points p ON p.device_id = d.id
    LEFT JOIN readings_latest l ON l.point_id = p.id
WHERE d.id = ANY(%s) ORDER BY d.id, p.name
"""


# a refresh of 1,000 devices reads 4,000 rows: ~10 ms of conversion in one go, during which
# the API process answered nothing; in chunks, the event loop runs between them
_CHUNK_ROWS = 400


async def devices_latest(
    conn: AsyncConnection, devices: list[str]
) -> AsyncIterator[tuple[str, str | None, list[tuple]]]:
    """Each registered device of these, in id order, as (device, its department, its points'
    latest values as (point, unit, data_type, time, value, quality) with the text as the
    value of a string point), from one query (issue #21: api/device_answers.py asks for
    every device in use at once). A device not registered is absent; the caller checks the
    department before showing the rows."""
    async with conn.cursor(binary=True) as cur:
        await cur.execute(_DEVICES_LATEST, (devices,))
        device, department, points = None, None, []
        while rows := await cur.fetchmany(_CHUNK_ROWS):
            for found, dept, name, unit, data_type, at, value, text, quality in rows:
                if found != device:
                    if device is not None:
                        yield device, department, points
                    device, department, points = found, dept, []
                if name is not None:  # a device without points: one row of NULLs
                    points.append((name, unit, data_type, at,
                                   text if data_type == "string" else value, quality))
            await asyncio.sleep(0)
        if device is not None:
            yield device, department, points


async def raw(
    conn: AsyncConnection, point_id: int, is_text: bool, start: datetime, end: datetime,
    limit: int,
) -> list[tuple]:
    table = "readings_text" if is_text else "readings"
    cur = await conn.execute(
        f"SELECT time, value, quality FROM {table}"
        " WHERE point_id = %s AND time >= %s AND time < %s ORDER BY time LIMIT %s",
        (point_id, start, end, limit),
    )
    return await cur.fetchall()


async def bucketed(
    conn: AsyncConnection, point_id: int, bucket_s: int, start: datetime, end: datetime
) -> list[tuple]:
    """(bucket, avg, min, max, count): the coarsest rollup that answers (1 h, 1 min) for the
    rolled-up part of the range, raw readings for the rest (ingestion/rollups.py)."""
    return await rollups.bucketed(conn, point_id, bucket_s, start, end)


async def latest_many(conn: AsyncConnection, devices: list[str]) -> list[dict]:
    """Latest value of every point of these devices, ordered by device and point; `value` is
    the text of a string point."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LATEST, {"devices": devices})
        rows = await cur.fetchall()
    for row in rows:
        text = row.pop("text")
        if row["data_type"] == "string":
            row["value"] = text
    return rows


# One page of devices with their points' latest values, as the JSON of /v1/readings/latest,
# built by PostgreSQL: for 4,000 points, parsing the rows in Python and encoding them again
# took ~100 ms of the API's CPU per answer against ~25 ms for the query (`make bench-api`).
# The same values as typed_value() (api/routes/devices.py): bools as booleans, integer types
# as integers while exact (up to 2^53), text for string points; times in UTC with 'Z'.
_PAGE_JSON = """
WITH page AS (SELECT d.id FROM devices d{where} ORDER BY d.id LIMIT %(more)s),
shown AS (SELECT id FROM page ORDER BY id LIMIT %(limit)s)
SELECT (SELECT count(*) FROM page) > %(limit)s, (SELECT max(id) FROM shown),
    (SELECT coalesce(json_agg(json_build_object('device', shown.id, 'points', pts.points)
        ORDER BY shown.id), '[]') FROM shown CROSS JOIN LATERAL (
        SELECT coalesce(json_agg(json_build_object(
            'point', p.name, 'unit', p.unit,
            'time', to_char(l.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'value', CASE
                WHEN p.data_type = 'string' THEN to_json(l.text)
                WHEN l.value IS NULL THEN NULL
                WHEN p.data_type = 'bool' THEN to_json(l.value <> 0)
                WHEN p.data_type IN ('float32', 'float64') OR abs(l.value) > 2^53
                    OR l.value <> trunc(l.value) THEN to_json(l.value)
                ELSE to_json(l.value::bigint) END,
            'quality', CASE l.quality WHEN 0 THEN 'good' WHEN 1 THEN 'uncertain'
                WHEN 2 THEN 'bad' END) ORDER BY p.name), '[]') AS points
        FROM points p LEFT JOIN readings_latest l ON l.point_id = p.id
        WHERE p.device_id = shown.id) pts)::text
"""


async def latest_page_json(
    conn: AsyncConnection, filters: dict, after: str | None, limit: int,
) -> tuple[bytes, int, str | None]:
    """(the JSON array of the page's items, devices matching in all, next_after) for
    /v1/readings/latest: devices after `after` by keyset (an index range, whatever the
    depth)."""
    clause, params = where(filters)
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT count(*) FROM devices d{clause}", params)
        total = (await cur.fetchone())[0]  # type: ignore[index]
        clause, params = where(filters | {"d.id >": after})
        # positional filter values, then the named limits: psycopg takes one style per query
        named = {f"f{i}": v for i, v in enumerate(params)} | {"more": limit + 1, "limit": limit}
        for i in range(len(params)):
            clause = clause.replace("%s", f"%(f{i})s", 1)
        await cur.execute(_PAGE_JSON.format(where=clause), named)
        more, last, items = await cur.fetchone()  # type: ignore[misc]
    return items.encode(), total, last if more else None


async def device_page(
    conn: AsyncConnection, filters: dict, after: str | None, limit: int,
) -> tuple[list[str], int]:
    """Device ids matching the filters after `after` (keyset: an index range, whatever the
    page's depth; one more than `limit` when there are more), and how many match in all."""
    clause, params = where(filters)
    async with conn.cursor() as cur:
        await cur.execute(f"SELECT count(*) FROM devices d{clause}", params)
        total = (await cur.fetchone())[0]  # type: ignore[index]
        clause, params = where(filters | {"d.id >": after})
        await cur.execute(f"SELECT d.id FROM devices d{clause} ORDER BY d.id LIMIT %s",
                          [*params, limit + 1])
        return [r[0] for r in await cur.fetchall()], total
