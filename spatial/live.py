"""What the big screen's map draws over its tiles and moves as the live stream reports
changes: the open alarms at their devices and the open events, as GeoJSON.

Tiles are cut for areas and devices, which change slowly; alarms and events come and go, so
the screen holds them as a small GeoJSON set it edits one feature at a time on each `alarm` or
`event` message (api/routes/live.py), never reloading a tile for a change. `departments`
(None: every department) keeps alarms to the caller's, as the API's lists do."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from spatial.tiles import EVENT_LIGHT

MAX_FEATURES = 5000  # per kind: more open alarms than this on one screen is a flood

_ALARMS = f"""
SELECT a.id, a.severity, a.state, a.device_id AS device, d.title AS device_title,
       left(a.message, 120) AS message, d.longitude, d.latitude
FROM alarms a JOIN devices d ON d.id = a.device_id
WHERE a.state <> 'cleared' AND d.geom IS NOT NULL AND a.id = coalesce(%(alarm)s, a.id)
  AND (%(scoped)s = false OR d.department_id = ANY(%(departments)s))
ORDER BY a.last_seen_at DESC LIMIT {MAX_FEATURES}"""

_EVENTS = f"""
SELECT t.id, t.state, t.category_code AS category, t.urgency, t.department_id AS department,
       t.area_assigned AS assigned, {EVENT_LIGHT} AS light, t.longitude, t.latitude
FROM events t
WHERE t.state NOT IN ('closed', 'cancelled') AND t.geom IS NOT NULL
ORDER BY t.reported_at DESC LIMIT {MAX_FEATURES}"""


def _collection(rows: list[dict]) -> dict:
    features = []
    for row in rows:
        lon, lat = row.pop("longitude"), row.pop("latitude")
        features.append({"type": "Feature", "id": row["id"], "properties": row,
                         "geometry": {"type": "Point", "coordinates": [lon, lat]}})
    return {"type": "FeatureCollection", "features": features}


async def open_alarms(conn: AsyncConnection, departments: frozenset[str] | None,
                      alarm: int | None = None) -> dict:
    """The open alarms placed at their devices (one, with `alarm`)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ALARMS, {"alarm": alarm, "scoped": departments is not None,
                                    "departments": sorted(departments or ())})
        return _collection(await cur.fetchall())


async def open_events(conn: AsyncConnection) -> dict:
    """The open events with their traffic light (the tiles' wall-clock light)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_EVENTS)
        return _collection(await cur.fetchall())
