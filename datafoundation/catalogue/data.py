"""Serving a resource's data to a grant holder: the platform's datasets straight from their
tables; a department's resource serves the files attached to it (its records live in the
department's own system)."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import dict_row

_READINGS = """
SELECT r.time, d.id AS device, p.name AS point, r.value
FROM readings r JOIN points p ON p.id = r.point_id JOIN devices d ON d.id = p.device_id
WHERE d.profile_id = %(ref)s AND r.time >= %(since)s AND r.time <= %(until)s
ORDER BY r.time DESC LIMIT %(limit)s
"""
_EVENTS = """
SELECT id, channel, category_code, urgency, state, department_id, address, reported_at,
    closed_at, closed_on_time
FROM events WHERE reported_at >= %(since)s AND reported_at <= %(until)s
ORDER BY id DESC LIMIT %(limit)s
"""
_CLOUD = """
SELECT kind, id, name, project, status FROM cloud_resources ORDER BY kind, id LIMIT %(limit)s
"""
_FILES = """
SELECT id, filename, content_type, size_bytes, sha256, uploaded_at FROM objects
WHERE owner_kind = 'resource' AND owner_id = %(code)s ORDER BY id LIMIT %(limit)s
"""
QUERIES = {"readings": _READINGS, "events": _EVENTS, "cloud": _CLOUD, "department": _FILES}


async def rows(
    conn: AsyncConnection, resource: dict, since: datetime, until: datetime, limit: int
) -> list[dict]:
    params = {"ref": resource["source_ref"], "code": resource["code"], "since": since,
              "until": until, "limit": limit}
    async with conn.cursor(row_factory=dict_row) as cur:
        if resource["source_kind"] == "readings":
            return await _newest_readings(cur, params)
        await cur.execute(QUERIES[resource["source_kind"]], params)
        return await cur.fetchall()


async def _newest_readings(cur: AsyncCursor, params: dict) -> list[dict]:
    """The newest `limit` readings in [since, until], looked for in the last 10 minutes, then
    ten times further back each time: the time index on readings is a BRIN (migration 091),
    which reads the pages of a window but cannot walk time in order, so a LIMIT over a long
    window would read and sort all of it (11 s over a day of 4,000 points, `make bench-api`'s
    data). Exact: when a window holds `limit` rows, no older row is among the newest."""
    span = timedelta(minutes=10)
    while True:
        since = max(params["since"], params["until"] - span)
        await cur.execute(_READINGS, params | {"since": since})
        found = await cur.fetchall()
        if len(found) >= params["limit"] or since <= params["since"]:
            return found
        span *= 10
