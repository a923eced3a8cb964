"""高发问题: the same category of problem at the same place, again and again, within N days.

Events of one category within `radius_m` of each other (density clustering, PostGIS
ST_ClusterDBSCAN in the county's metric CRS, CGCS2000 3-degree Gauss-Kruger zone 39, EPSG:4527)
form a place; a place with at least `min_events` in the window is a recurring problem. Its
trend is the weekly count over the window, and whether the second half of the window saw
more than the first.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput

# ST_ClusterDBSCAN: a point joins a cluster when within eps of a core point; with minpoints
# = min_events a place needs that many reports close together to count at all
_QUERY = """
WITH recent AS (
    SELECT id, category_code, reported_at, grid, address, geom,
           ST_ClusterDBSCAN(ST_Transform(geom, 4527), eps := %(radius)s,
                            minpoints := %(min_events)s)
               OVER (PARTITION BY category_code) AS place
    FROM events
    WHERE geom IS NOT NULL AND reported_at >= %(since)s AND reported_at < %(until)s
      AND merged_into IS NULL AND (%(category)s::text IS NULL OR category_code = %(category)s)
)
SELECT r.category_code AS category, c.minor AS category_name, count(*)::int AS events,
       min(r.reported_at) AS first_at, max(r.reported_at) AS last_at,
       ST_Y(ST_Centroid(ST_Collect(r.geom))) AS latitude,
       ST_X(ST_Centroid(ST_Collect(r.geom))) AS longitude,
       array_agg(DISTINCT r.grid) FILTER (WHERE r.grid <> '') AS grids,
       array_agg(r.id ORDER BY r.reported_at) AS event_ids,
       array_agg(floor(extract(epoch FROM r.reported_at - %(since)s) / 604800)::int)
           AS weeks
FROM recent r JOIN event_categories c ON c.code = r.category_code
WHERE r.place IS NOT NULL
GROUP BY r.category_code, c.minor, r.place
ORDER BY count(*) DESC, max(r.reported_at) DESC
LIMIT %(limit)s
"""


def _trend(weeks: list[int], n_weeks: int) -> tuple[list[int], str]:
    counts = [0] * n_weeks
    for w in weeks:
        counts[min(max(w, 0), n_weeks - 1)] += 1
    half = n_weeks // 2
    first, second = sum(counts[:half]), sum(counts[half:])
    # per week, so an odd window's longer second half does not look like growth
    first_rate, second_rate = first / max(half, 1), second / max(n_weeks - half, 1)
    if second_rate > first_rate * 1.25:
        return counts, "rising"
    if second_rate < first_rate * 0.8:
        return counts, "falling"
    return counts, "steady"


async def find(conn: AsyncConnection, *, until: datetime, days: int = 30, radius_m: float = 100,
               min_events: int = 3, category: str | None = None, limit: int = 100) -> list[dict]:
    if not 1 <= days <= 366:
        raise InvalidInput("days must be between 1 and 366")
    if not 1 <= radius_m <= 5000:
        raise InvalidInput("radius_m must be between 1 and 5000 metres")
    if min_events < 2:
        raise InvalidInput("min_events must be at least 2: one report is not a recurrence")
    since = until - timedelta(days=days)
    cur = await conn.cursor(row_factory=dict_row).execute(_QUERY, {
        "radius": radius_m, "min_events": min_events, "since": since, "until": until,
        "category": category, "limit": limit,
    })
    n_weeks = max(1, -(-days // 7))
    places = []
    for row in await cur.fetchall():
        row["weekly"], row["trend"] = _trend(row.pop("weeks"), n_weeks)
        row["grids"] = row["grids"] or []
        places.append(row)
    return places
