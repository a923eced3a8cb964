"""SQL of the dashboards, all over the platform's own tables (docs/city-operations.md
"Dashboards" defines every figure). Structured readings are counted from `ingested_batches`
(one row per stored batch with its reading count), so totals stay cheap on a large hypertable
and do not shrink when retention drops old chunks."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

_VOLUMES = """
SELECT
    (SELECT coalesce(sum(readings), 0) FROM ingested_batches {b}) AS readings,
    (SELECT count(*) FROM events {e}) AS events,
    (SELECT count(*) FROM enterprise_indicators {i}) AS enterprise_rows,
    (SELECT count(*) FROM objects {o}) AS objects,
    (SELECT coalesce(sum(size_bytes), 0) FROM objects {o}) AS object_bytes
"""
_DEPARTMENTS = """
WITH r AS (
    SELECT g.department_id, sum(b.readings) AS readings,
        coalesce(sum(b.readings) FILTER (WHERE b.stored_at >= %(y0)s AND b.stored_at < %(y1)s),
                 0) AS readings_yesterday
    FROM ingested_batches b JOIN gateways g ON g.id = b.gateway_id GROUP BY 1
), o AS (
    SELECT department_id, count(*) AS objects, sum(size_bytes) AS object_bytes,
        count(*) FILTER (WHERE uploaded_at >= %(y0)s AND uploaded_at < %(y1)s)
            AS objects_yesterday
    FROM objects GROUP BY 1
)
SELECT d.id AS department_id, d.name, coalesce(r.readings, 0) AS readings,
    coalesce(r.readings_yesterday, 0) AS readings_yesterday, coalesce(o.objects, 0) AS objects,
    coalesce(o.object_bytes, 0) AS object_bytes,
    coalesce(o.objects_yesterday, 0) AS objects_yesterday
FROM departments d LEFT JOIN r ON r.department_id = d.id LEFT JOIN o ON o.department_id = d.id
WHERE r.readings IS NOT NULL OR o.objects IS NOT NULL
ORDER BY readings DESC, objects DESC, d.id
"""
# a point's allowed range comes from its profile (points[].range in profiles.body)
_QUALITY = """
WITH ranges AS (
    SELECT p.id AS point_id, d.department_id,
        (x->'range'->>'min')::float8 AS lo, (x->'range'->>'max')::float8 AS hi
    FROM points p JOIN devices d ON d.id = p.device_id JOIN profiles pr ON pr.id = d.profile_id
    LEFT JOIN LATERAL jsonb_array_elements(pr.body->'points') x ON x->>'name' = p.name
)
SELECT rg.department_id, GROUPING(rg.department_id) = 1 AS overall, count(*) AS readings,
    count(*) FILTER (WHERE r.quality = 0) AS good,
    count(*) FILTER (WHERE r.quality = 1) AS uncertain,
    count(*) FILTER (WHERE r.quality = 2) AS bad,
    count(*) FILTER (WHERE r.value < rg.lo OR r.value > rg.hi) AS out_of_range
FROM readings r JOIN ranges rg USING (point_id)
WHERE r.time >= %(y0)s AND r.time < %(y1)s
GROUP BY ROLLUP (rg.department_id)
"""
_MESSAGES = """
SELECT (SELECT count(*) FROM ingested_batches WHERE stored_at >= %(y0)s AND stored_at < %(y1)s)
        AS accepted_messages,
    (SELECT coalesce(sum(late), 0) FROM ingested_batches
        WHERE stored_at >= %(y0)s AND stored_at < %(y1)s) AS late,
    (SELECT coalesce(sum(readings), 0) FROM ingested_batches
        WHERE stored_at >= %(y0)s AND stored_at < %(y1)s) AS arrived_readings,
    (SELECT count(*) FROM dead_letters WHERE received_at >= %(y0)s AND received_at < %(y1)s)
        AS dead_letters
"""


async def _one(conn: AsyncConnection, query: str, params: dict) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchone()


async def _all(conn: AsyncConnection, query: str, params: dict) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def volumes(conn: AsyncConnection, y0: datetime | None, y1: datetime | None) -> dict:
    """Totals, or the increment of [y0, y1) when given."""
    if y0 is None:
        query = _VOLUMES.format(b="", e="", i="", o="")
    else:
        window = "WHERE {c} >= %(y0)s AND {c} < %(y1)s"
        query = _VOLUMES.format(b=window.format(c="stored_at"), e=window.format(c="reported_at"),
                                i=window.format(c="imported_at"),
                                o=window.format(c="uploaded_at"))
    return await _one(conn, query, {"y0": y0, "y1": y1})


async def departments(conn: AsyncConnection, y0: datetime, y1: datetime) -> list[dict]:
    return await _all(conn, _DEPARTMENTS, {"y0": y0, "y1": y1})


async def quality(conn: AsyncConnection, y0: datetime, y1: datetime) -> tuple[list[dict], dict]:
    """(per-department reading quality with an overall row, message counts) for [y0, y1)."""
    rows = await _all(conn, _QUALITY, {"y0": y0, "y1": y1})
    return rows, await _one(conn, _MESSAGES, {"y0": y0, "y1": y1})


_CALLS_TOTAL = """
SELECT count(*) AS calls, count(*) FILTER (WHERE status < 400) AS succeeded,
    count(*) FILTER (WHERE status >= 400) AS failed FROM api_calls
"""
_POPULAR = """
SELECT service, calls, succeeded, round((100 * percent_rank() OVER (ORDER BY calls))::numeric, 1)
    AS percentile FROM (
    SELECT method || ' ' || route AS service, count(*) AS calls,
        count(*) FILTER (WHERE status < 400) AS succeeded
    FROM api_calls WHERE time >= %(since)s AND time <= %(now)s GROUP BY 1) s
ORDER BY calls DESC, service LIMIT %(top)s
"""
_APPLICATIONS = """
SELECT coalesce(k.name, 'key-' || c.key_id) AS application, count(*) AS calls,
    count(*) FILTER (WHERE c.status < 400) AS succeeded
FROM api_calls c LEFT JOIN api_keys k ON k.id = c.key_id
WHERE c.time >= %(since)s AND c.time <= %(now)s GROUP BY 1 ORDER BY calls DESC, 1 LIMIT %(top)s
"""
_RESOURCES = """
SELECT r.code, r.name, r.provider_id,
    (SELECT count(*) FROM grants g WHERE g.resource_code = r.code) AS grants,
    (SELECT count(*) FROM grants g WHERE g.resource_code = r.code AND g.revoked_at IS NULL
     AND g.expires_at > %(now)s) AS live_grants,
    (SELECT count(*) FROM resource_calls c WHERE c.resource_code = r.code AND c.ok) AS calls,
    (SELECT count(*) FROM resource_calls c WHERE c.resource_code = r.code AND NOT c.ok)
        AS refused_calls
FROM resources r ORDER BY calls DESC, grants DESC, r.code
"""
_PORTAL = """
SELECT count(*) AS requests,
    count(*) FILTER (WHERE state = 'with_provider') AS awaiting_provider,
    count(*) FILTER (WHERE state = 'granted') AS granted,
    count(*) FILTER (WHERE state = 'refused') AS refused,
    count(*) FILTER (WHERE state = 'with_provider' AND provider_due_at < %(now)s) AS overdue,
    count(*) FILTER (WHERE provider_due_at IS NOT NULL AND decided_at <= provider_due_at)
        AS answered_in_time,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - submitted_at))
        FILTER (WHERE provider_due_at IS NOT NULL AND decided_at IS NOT NULL) / 3600
        AS median_reply_hours
FROM access_requests
"""


async def services(conn: AsyncConnection, now: datetime, top: int) -> dict:
    popular = {}
    for days in (1, 7, 30):
        popular[f"{days}d"] = await _all(conn, _POPULAR, {
            "since": now - timedelta(days=days), "now": now, "top": top})
    return {
        "calls": await _one(conn, _CALLS_TOTAL, {}),
        "popular": popular,
        "applications": await _all(conn, _APPLICATIONS, {
            "since": now - timedelta(days=30), "now": now, "top": top}),
        "resources": await _all(conn, _RESOURCES, {"now": now}),
        "portal": await _one(conn, _PORTAL, {"now": now}),
    }
