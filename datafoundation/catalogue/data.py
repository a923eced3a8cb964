"""Serving a resource's data to a grant holder: the platform's datasets straight from their
tables; a department's resource serves the files attached to it (its records live in the
department's own system)."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
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
        await cur.execute(QUERIES[resource["source_kind"]], params)
        return await cur.fetchall()
