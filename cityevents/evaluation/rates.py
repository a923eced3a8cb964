"""GB/T 30428.4 rates per town or grid: the counts of cityevents/queries.py's per-department
evaluation (same pairs, same definitions), grouped by the event's place instead."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

# the event's town (from its point, migration 081) or grid cell; '' where it has none
AREA_KEYS = {"town": "coalesce(e.town_code, '')", "grid": "e.grid"}

_RATES = """
WITH pairs AS (
    SELECT DISTINCT ON (t.event_id, t.department_id) t.event_id, t.department_id
    FROM event_transitions t
    WHERE t.action = 'dispatch' AND t.at >= %(start)s AND t.at < %(end)s
    ORDER BY t.event_id, t.department_id, t.at
), judged AS (
    SELECT {key} AS area,
        NOT EXISTS (SELECT 1 FROM event_transitions r WHERE r.event_id = p.event_id
                    AND r.action = 'return' AND r.department_id = p.department_id) AS accurate,
        (e.department_id = p.department_id AND e.state <> 'cancelled') AS due,
        e.disposed_at IS NOT NULL AS disposed, coalesce(e.disposed_on_time, false) AS disposed_ot,
        e.state = 'closed' AS closed, coalesce(e.closed_on_time, false) AS closed_ot,
        e.rework_count > 0 AS reworked
    FROM pairs p JOIN events e ON e.id = p.event_id
)
SELECT area,
    count(*) AS dispatched,
    count(*) FILTER (WHERE accurate) AS accurate_dispatches,
    count(*) FILTER (WHERE due) AS due,
    count(*) FILTER (WHERE due AND disposed) AS disposed,
    count(*) FILTER (WHERE due AND disposed AND disposed_ot) AS disposed_on_time,
    count(*) FILTER (WHERE due AND closed) AS closed,
    count(*) FILTER (WHERE due AND closed AND closed_ot) AS closed_on_time,
    count(*) FILTER (WHERE due AND reworked) AS reworked
FROM judged GROUP BY area ORDER BY area
"""


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


async def by_area(conn: AsyncConnection, by: str, start: datetime, end: datetime) -> list[dict]:
    """Counts and rates per place of events first dispatched in [start, end)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_RATES.format(key=AREA_KEYS[by]), {"start": start, "end": end})
        rows = await cur.fetchall()
    for row in rows:
        due = row["due"]
        row.update(
            closure_rate=_rate(row["closed"], due),
            on_time_closure_rate=_rate(row["closed_on_time"], due),
            disposal_rate=_rate(row["disposed"], due),
            on_time_disposal_rate=_rate(row["disposed_on_time"], due),
            rework_rate=_rate(row["reworked"], due),
            accurate_dispatch_rate=_rate(row["accurate_dispatches"], row["dispatched"]))
    return rows
