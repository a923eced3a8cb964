"""Department performance over time: per department and week, what was dispatched to it and
how it was handled (GB/T 30428.4's rates, week by week, so a department is compared with its
own past rather than ranked against others)."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput

# a dispatch transition names the department; the event's outcome columns say how it went
_QUERY = """
WITH dispatched AS (
    SELECT DISTINCT ON (t.event_id, t.department_id) t.event_id, t.department_id,
           (date_trunc('week', t.at AT TIME ZONE 'Asia/Shanghai'))::date AS week
    FROM event_transitions t
    WHERE t.action = 'dispatch' AND t.department_id IS NOT NULL
      AND t.at >= %(since)s AND t.at < %(until)s
      AND (%(department)s::text IS NULL OR t.department_id = %(department)s)
    ORDER BY t.event_id, t.department_id, t.at
)
SELECT d.department_id AS department, d.week, count(*)::int AS dispatched,
       count(*) FILTER (WHERE e.disposed_at IS NOT NULL)::int AS disposed,
       count(*) FILTER (WHERE e.disposed_on_time)::int AS disposed_on_time,
       count(*) FILTER (WHERE e.state = 'closed')::int AS closed,
       count(*) FILTER (WHERE e.rework_count > 0)::int AS reworked
FROM dispatched d JOIN events e ON e.id = d.event_id
GROUP BY 1, 2 ORDER BY 1, 2
"""


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def weekly(conn: AsyncConnection, until: datetime, weeks: int = 12,
                 department: str | None = None) -> list[dict]:
    if not 1 <= weeks <= 104:
        raise InvalidInput("weeks must be between 1 and 104")
    cur = await conn.cursor(row_factory=dict_row).execute(_QUERY, {
        "since": until - timedelta(weeks=weeks), "until": until, "department": department})
    rows = await cur.fetchall()
    for r in rows:
        r["on_time_rate"] = _rate(r["disposed_on_time"], r["disposed"])  # 按期处置率
        r["closure_rate"] = _rate(r["closed"], r["dispatched"])          # 结案率
        r["rework_rate"] = _rate(r["reworked"], r["dispatched"])         # 返工率
    return rows
