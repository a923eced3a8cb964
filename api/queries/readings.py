"""SQL reads of readings. Latest values use one index probe per point (no SkipScan in the
Apache build of TimescaleDB, so DISTINCT ON would scan)."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import NotFound

_LATEST_NUMERIC = """
SELECT p.name AS point, p.unit, p.data_type, r.time, r.value, r.quality
FROM points p
LEFT JOIN LATERAL (
    SELECT time, value, quality FROM readings
    WHERE point_id = p.id ORDER BY time DESC LIMIT 1
) r ON true
WHERE p.device_id = %(device)s AND p.data_type <> 'string'
"""
_LATEST_TEXT = _LATEST_NUMERIC.replace("FROM readings", "FROM readings_text").replace(
    "p.data_type <> 'string'", "p.data_type = 'string'"
)


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
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LATEST_NUMERIC, {"device": device})
        rows = await cur.fetchall()
        await cur.execute(_LATEST_TEXT, {"device": device})
        rows += await cur.fetchall()
    return sorted(rows, key=lambda r: r["point"])


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
    from ingestion.rollups import bucketed as from_rollups

    return await from_rollups(conn, point_id, bucket_s, start, end)


_LATEST_MANY = """
SELECT p.device_id AS device, p.name AS point, p.unit, p.data_type, r.time, r.value, r.quality
FROM points p
LEFT JOIN LATERAL (
    SELECT time, value, quality FROM {table}
    WHERE point_id = p.id ORDER BY time DESC LIMIT 1
) r ON true
WHERE p.device_id = ANY(%(devices)s) AND p.data_type {op} 'string'
"""


async def latest_many(conn: AsyncConnection, devices: list[str]) -> list[dict]:
    """Latest value of every point of these devices: one index probe per point."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_LATEST_MANY.format(table="readings", op="<>"), {"devices": devices})
        rows = await cur.fetchall()
        await cur.execute(_LATEST_MANY.format(table="readings_text", op="="),
                          {"devices": devices})
        rows += await cur.fetchall()
    return sorted(rows, key=lambda r: (r["device"], r["point"]))
