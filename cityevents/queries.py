"""SQL reads of city events: one event with its history, lists, and department evaluation."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from cityops.errors import NotFound

# the clocks of an event's open co-handling tasks (cityevents/task_views.py co_light): the
# event's light is the worst of its own and theirs
_CO_CLOCKS = (
    "(SELECT jsonb_agg(jsonb_build_object('state', t.state, 'unit', t.unit, 'limit_s',"
    " t.limit_s, 'deadline_at', t.deadline_at)) FROM event_tasks t WHERE t.event_id = e.id"
    " AND t.state IN ('assigned', 'processing')) AS co_clocks"
)
LIST_FILTERS = ("state", "department_id", "category_code", "channel", "supervised", "urgency",
                "reporter")  # reporter: the field app's own reports (cityevents/field.py)


async def get(conn: AsyncConnection, event_id: int) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT e.*, c.kind AS category_kind, c.major AS category_major,"
            " c.minor AS category_minor, " + _CO_CLOCKS + " FROM events e"
            " JOIN event_categories c ON c.code = e.category_code WHERE e.id = %s",
            (event_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event {event_id} does not exist")
    return row


async def history(conn: AsyncConnection, event_id: int) -> tuple[list[dict], list[dict]]:
    """(transitions with their attachment ids, requests) of one event, oldest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT t.*, coalesce(array_agg(o.id ORDER BY o.id) FILTER (WHERE o.id IS NOT NULL),"
            " '{}') AS attachment_ids FROM event_transitions t"
            " LEFT JOIN objects o ON o.transition_id = t.id"
            " WHERE t.event_id = %s GROUP BY t.id ORDER BY t.id",
            (event_id,),
        )
        transitions = await cur.fetchall()
        await cur.execute(
            "SELECT * FROM event_requests WHERE event_id = %s ORDER BY id", (event_id,)
        )
        requests = await cur.fetchall()
    return transitions, requests


async def listing(
    conn: AsyncConnection, filters: dict, since: datetime | None, until: datetime | None,
    limit: int, offset: int,
) -> list[dict]:
    where = [sql.SQL("true")]
    params: dict = {"limit": limit, "offset": offset, "since": since, "until": until}
    for name in LIST_FILTERS:
        if filters.get(name) is not None:
            where.append(sql.SQL("{} = {}").format(sql.Identifier("e", name),
                                                   sql.Placeholder(name)))
            params[name] = filters[name]
    if filters.get("task_department_id") is not None:  # lead or co-handler (协办)
        where.append(sql.SQL(
            "(e.department_id = %(task_dep)s OR EXISTS (SELECT 1 FROM event_tasks t WHERE"
            " t.event_id = e.id AND t.department_id = %(task_dep)s AND t.state <> 'released'))"))
        params["task_dep"] = filters["task_department_id"]
    if since is not None:
        where.append(sql.SQL("e.reported_at >= %(since)s"))
    if until is not None:
        where.append(sql.SQL("e.reported_at < %(until)s"))
    query = sql.SQL(
        "SELECT e.*, c.kind AS category_kind, c.major AS category_major,"
        " c.minor AS category_minor, " + _CO_CLOCKS + " FROM events e"
        " JOIN event_categories c ON c.code = e.category_code"
        " WHERE {} ORDER BY e.id DESC LIMIT %(limit)s OFFSET %(offset)s"
    ).format(sql.SQL(" AND ").join(where))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def categories(conn: AsyncConnection) -> tuple[list[dict], list[dict]]:
    """(categories, time limits); limits of category '*' apply to every category."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM event_categories ORDER BY code")
        rows = await cur.fetchall()
        await cur.execute(
            "SELECT category_code, urgency, step, amount::float8 AS amount, unit"
            " FROM event_time_limits ORDER BY category_code, urgency, step"
        )
        limits = await cur.fetchall()
    return rows, limits


# One row per (event, department) first dispatched to it in the period; the counts follow
# docs/city-operations.md "Evaluation". State is as of the query, not as of the period's end.
# Grouped by `{key}` named `{name}`: the department here, the event's town or grid cell in
# cityevents/evaluation/rates.py (the same pairs and definitions)
EVALUATION_TEMPLATE = """
WITH pairs AS (
    SELECT DISTINCT ON (t.event_id, t.department_id) t.event_id, t.department_id
    FROM event_transitions t
    WHERE t.action = 'dispatch' AND t.at >= %(start)s AND t.at < %(end)s
    ORDER BY t.event_id, t.department_id, t.at
), judged AS (
    SELECT {key} AS {name},
        NOT EXISTS (SELECT 1 FROM event_transitions r WHERE r.event_id = p.event_id
                    AND r.action = 'return' AND r.department_id = p.department_id) AS accurate,
        (e.department_id = p.department_id AND e.state <> 'cancelled') AS due,
        e.disposed_at IS NOT NULL AS disposed, coalesce(e.disposed_on_time, false) AS disposed_ot,
        e.state = 'closed' AS closed, coalesce(e.closed_on_time, false) AS closed_ot,
        e.rework_count > 0 AS reworked
    FROM pairs p JOIN events e ON e.id = p.event_id
)
SELECT {name},
    count(*) AS dispatched,
    count(*) FILTER (WHERE accurate) AS accurate_dispatches,
    count(*) FILTER (WHERE due) AS due,
    count(*) FILTER (WHERE due AND disposed) AS disposed,
    count(*) FILTER (WHERE due AND disposed AND disposed_ot) AS disposed_on_time,
    count(*) FILTER (WHERE due AND closed) AS closed,
    count(*) FILTER (WHERE due AND closed AND closed_ot) AS closed_on_time,
    count(*) FILTER (WHERE due AND reworked) AS reworked
FROM judged GROUP BY {name} ORDER BY {name}
"""
_EVALUATION = EVALUATION_TEMPLATE.format(key="p.department_id", name="department_id")


async def evaluation(conn: AsyncConnection, start: datetime, end: datetime) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_EVALUATION, {"start": start, "end": end})
        return await cur.fetchall()


_OPEN311 = """
SELECT e.id, e.state, e.category_code, c.minor AS service_name, e.description,
    coalesce(d.name, '') AS agency, e.reported_at, e.updated_at, e.closed_at,
    e.total_deadline_at, e.address, e.latitude, e.longitude,
    (SELECT t.detail->>'media_url' FROM event_transitions t WHERE t.event_id = e.id
     AND t.action = 'report') AS media_url
FROM events e JOIN event_categories c ON c.code = e.category_code
LEFT JOIN departments d ON d.id = e.department_id
WHERE {where} ORDER BY e.id DESC LIMIT %(limit)s
"""


async def open311_requests(
    conn: AsyncConnection, ids: list[int] | None, service_code: str | None,
    start: datetime | None, end: datetime | None, closed: bool | None, limit: int,
    via: str | None,
) -> list[dict]:
    """Citizens' requests for GeoReport v2, newest first (the spec's default window is the
    caller's business; we cap the count instead): those submitted `via` one application, or
    (via None, the hotline desk) every request of the citizen channel. Never other channels,
    and no workflow notes or people: the columns are the public ones only."""
    where = ["e.channel = 'citizen'"]
    if via is not None:
        where.append("e.reported_via = %(via)s")
    if ids is not None:
        where.append("e.id = ANY(%(ids)s)")
    if service_code is not None:
        where.append("e.category_code = %(service_code)s")
    if start is not None:
        where.append("e.reported_at >= %(start)s")
    if end is not None:
        where.append("e.reported_at < %(end)s")
    if closed is not None:
        where.append(("" if closed else "NOT ") + "(e.state IN ('closed', 'cancelled'))")
    query = _OPEN311.format(where=" AND ".join(where))
    params = {"ids": ids, "service_code": service_code, "start": start, "end": end,
              "limit": limit, "via": via}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
