"""Duplicate reports found at intake, in the transaction that stores the new report.

A new event of a category that already has an open event within `radius_m` metres (or, with
no coordinates, at the same address) reported within `hours` gets a merge suggestion for the
dispatcher (cityevents/analysis/duplicates.py decides them). Kept apart from the deciding
code because the event service calls it: it must not import the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row


@dataclass(frozen=True)
class Window:
    radius_m: float = 50.0
    hours: float = 24.0


_CANDIDATES = """
SELECT o.id AS duplicate_of,
       CASE WHEN n.geom IS NOT NULL AND o.geom IS NOT NULL
            THEN ST_Distance(n.geom::geography, o.geom::geography) END AS distance_m,
       abs(extract(epoch FROM n.reported_at - o.reported_at)) / 3600 AS hours_apart
FROM events n JOIN events o
  ON o.category_code = n.category_code AND o.id <> n.id
 AND o.state NOT IN ('closed', 'cancelled') AND o.merged_into IS NULL
 AND o.reported_at BETWEEN n.reported_at - make_interval(secs => %(secs)s)
                       AND n.reported_at + make_interval(secs => %(secs)s)
WHERE n.id = %(id)s AND o.id < n.id
  AND ((n.geom IS NOT NULL AND o.geom IS NOT NULL
        AND ST_DWithin(n.geom::geography, o.geom::geography, %(radius)s))
    OR (n.geom IS NULL AND btrim(n.address) <> ''
        AND lower(btrim(n.address)) = lower(btrim(o.address))))
ORDER BY distance_m NULLS LAST, hours_apart
LIMIT 5
"""


async def suggest(conn: AsyncConnection, event_id: int, now: datetime,
                  window: Window = Window()) -> list[int]:
    """Record merge suggestions for a new event; returns the open events it may duplicate."""
    cur = await conn.cursor(row_factory=dict_row).execute(_CANDIDATES, {
        "id": event_id, "secs": window.hours * 3600, "radius": window.radius_m})
    found = await cur.fetchall()
    for row in found:
        await conn.execute(
            "INSERT INTO event_merge_suggestions (event_id, duplicate_of, distance_m,"
            " hours_apart, created_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (event_id, row["duplicate_of"], row["distance_m"], row["hours_apart"], now))
    return [row["duplicate_of"] for row in found]


