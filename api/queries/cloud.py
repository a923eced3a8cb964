"""SQL reads for /v1/cloud: jobs and their events, inventory, capacity, cloud alarms."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from api.deps import get_pool
from cityops.errors import NotFound


async def _all(conn: AsyncConnection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def jobs(conn: AsyncConnection, state: str | None, kind: str | None,
               limit: int, cloud: str | None = None) -> list[dict]:
    return await _all(
        conn,
        "SELECT id, cloud, kind, state, progress, detail, requested_by, attempts, created_at,"
        " started_at, finished_at FROM jobs WHERE (%s::text IS NULL OR state = %s)"
        " AND (%s::text IS NULL OR kind = %s) AND (%s::text IS NULL OR cloud = %s)"
        " ORDER BY created_at DESC LIMIT %s",
        (state, state, kind, kind, cloud, cloud, limit))


async def job_with_events(conn: AsyncConnection, job_id: str) -> dict:
    rows = await _all(conn, "SELECT * FROM jobs WHERE id = %s", (job_id,))
    if not rows:
        raise NotFound(f"job {job_id} does not exist")
    job = rows[0]
    job["events"] = await _all(
        conn, "SELECT id, time, message, host, task, status FROM job_events"
        " WHERE job_id = %s ORDER BY id", (job_id,))
    return job


async def stream_job_events(request: Request, job_id: str) -> AsyncIterator[bytes]:
    """Server-sent events: every job event once, then `end` when the job has finished."""
    last = 0
    while not await request.is_disconnected():
        async with get_pool(request).connection() as conn:
            events = await _all(
                conn, "SELECT id, time, message, host, task, status FROM job_events"
                " WHERE job_id = %s AND id > %s ORDER BY id", (job_id, last))
            state = (await _all(conn, "SELECT state, progress, detail FROM jobs WHERE id = %s",
                                (job_id,)))[0]
        for event in events:
            last = event["id"]
            yield f"event: job\ndata: {json.dumps(event, default=str)}\n\n".encode()
        if state["state"] in ("succeeded", "failed"):
            yield f"event: end\ndata: {json.dumps(state)}\n\n".encode()
            return
        await asyncio.sleep(0.5)


async def inventory(conn: AsyncConnection, project: str | None, kind: str | None,
                    cloud: str | None = None) -> list[dict]:
    """`stale`: the part this row belongs to could not be listed at the last sync."""
    return await _all(
        conn, "SELECT cloud, kind, id, name, project, status, attributes, seen_at, stale"
        " FROM cloud_resources WHERE (%s::text IS NULL OR project = %s)"
        " AND (%s::text IS NULL OR kind = %s) AND (%s::text IS NULL OR cloud = %s)"
        " ORDER BY cloud, project, kind, name", (project, project, kind, kind, cloud, cloud))


async def capacity_now(conn: AsyncConnection, cloud: str | None = None) -> list[dict]:
    """What each cloud's last capacity sync read, and only that: a project deleted since is
    gone at once (all rows of one sync share its transaction's time)."""
    return await _all(
        conn, "WITH last AS (SELECT cloud, max(time) AS time FROM cloud_capacity"
        " WHERE time > now() - interval '1 day' AND (%s::text IS NULL OR cloud = %s)"
        " GROUP BY cloud)"
        " SELECT c.cloud, c.scope, c.metric, c.used, c.lim AS limit, c.time,"
        " NOT coalesce(s.ok, true) AS stale FROM cloud_capacity c JOIN last USING (cloud, time)"
        " LEFT JOIN cloud_sync s ON s.cloud = c.cloud AND s.part = 'capacity'"
        " ORDER BY c.cloud, c.scope, c.metric", (cloud, cloud))


async def capacity_history(conn: AsyncConnection, scope: str, metric: str, hours: int,
                           cloud: str | None = None) -> list[dict]:
    """5-minute averages of use, each with the limit in force at the bucket's end (a quota
    changed inside a bucket is its new value, not the larger of the two)."""
    return await _all(
        conn, "SELECT time_bucket('5 minutes', time) AS time, avg(used) AS used,"
        " last(lim, time) AS limit FROM cloud_capacity WHERE scope = %s AND metric = %s"
        " AND time > now() - make_interval(hours => %s) AND (%s::text IS NULL OR cloud = %s)"
        " GROUP BY 1 ORDER BY 1", (scope, metric, hours, cloud, cloud))


async def inventory_history(conn: AsyncConnection, project: str, kind: str, hours: int,
                            cloud: str | None = None) -> list[dict]:
    return await _all(
        conn, "SELECT time, cloud, count, by_status FROM cloud_inventory WHERE project = %s"
        " AND kind = %s AND time > now() - make_interval(hours => %s)"
        " AND (%s::text IS NULL OR cloud = %s) ORDER BY time",
        (project, kind, hours, cloud, cloud))


async def alarms(conn: AsyncConnection, open_only: bool, cloud: str | None = None) -> list[dict]:
    return await _all(
        conn, "SELECT * FROM cloud_alarms WHERE (NOT %s OR state <> 'cleared')"
        " AND (%s::text IS NULL OR cloud = %s) ORDER BY last_seen_at DESC LIMIT 500",
        (open_only, cloud, cloud))


async def clouds(conn: AsyncConnection, offered: list[str]) -> list[dict]:
    rows = await _all(conn, "SELECT cloud, part, ok, detail, checked_at, synced_at"
                            " FROM cloud_sync WHERE cloud = ANY(%s) ORDER BY cloud, part",
                      (offered,))
    return [{"cloud": c, "sync": [{k: v for k, v in r.items() if k != "cloud"}
                                  for r in rows if r["cloud"] == c]} for c in offered]


async def acknowledge(conn: AsyncConnection, alarm_id: int, by: str) -> dict:
    rows = await _all(
        conn, "UPDATE cloud_alarms SET state = 'acknowledged', acknowledged_at = now(),"
        " acknowledged_by = %s WHERE id = %s AND state = 'active' RETURNING *", (by, alarm_id))
    if not rows:
        found = await _all(conn, "SELECT state FROM cloud_alarms WHERE id = %s", (alarm_id,))
        if not found:
            raise NotFound(f"cloud alarm {alarm_id} does not exist")
        from cityops.errors import Conflict

        raise Conflict(f"cloud alarm {alarm_id} is {found[0]['state']}, not active")
    await conn.commit()
    return rows[0]
