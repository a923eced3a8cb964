"""GB/T 30428.4 counts of co-handling (协办) tasks per department, beside the lead counts of
cityevents/queries.py `evaluation` (docs/city-operations.md "Co-handling in the evaluation").

A task counts in the period its department was assigned it. Due (应处置) = not released and
its event not cancelled; disposed = done (feedback given and not sent back); on time = its last
feedback met the task's deadline; reworked = sent back by the lead at least once.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

_COUNTS = """
SELECT t.department_id,
    count(*) AS co_assigned,
    count(*) FILTER (WHERE t.state <> 'released' AND e.state <> 'cancelled') AS co_due,
    count(*) FILTER (WHERE t.state = 'done' AND e.state <> 'cancelled') AS co_disposed,
    count(*) FILTER (WHERE t.state = 'done' AND t.done_on_time AND e.state <> 'cancelled')
        AS co_disposed_on_time,
    count(*) FILTER (WHERE t.state <> 'released' AND t.rework_count > 0
                     AND e.state <> 'cancelled') AS co_reworked
FROM event_tasks t JOIN events e ON e.id = t.event_id
WHERE t.assigned_at >= %(start)s AND t.assigned_at < %(end)s
GROUP BY t.department_id
"""

ZERO = {"co_assigned": 0, "co_due": 0, "co_disposed": 0, "co_disposed_on_time": 0,
        "co_reworked": 0}
LEAD_ZERO = {"dispatched": 0, "accurate_dispatches": 0, "due": 0, "disposed": 0,
             "disposed_on_time": 0, "closed": 0, "closed_on_time": 0, "reworked": 0}


async def counts(conn: AsyncConnection, start: datetime, end: datetime) -> dict[str, dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COUNTS, {"start": start, "end": end})
        return {r.pop("department_id"): r for r in await cur.fetchall()}


def merge(lead_rows: list[dict], co: dict[str, dict]) -> list[dict]:
    """One row per department with its lead counts and its co-handling counts (zeros where a
    department had only one kind), in department order."""
    rows = {r["department_id"]: {**r, **ZERO} for r in lead_rows}
    for department, counted in co.items():
        base = rows.get(department) or {"department_id": department, **LEAD_ZERO}
        rows[department] = {**base, **counted}
    return [rows[k] for k in sorted(rows)]
