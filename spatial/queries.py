"""The spatial questions the workflow asks: the nearest devices (cameras) to a point, an
event or an alarm; what lies inside a drawn polygon; alarms and events counted by area.

`departments` (None: every department) limits devices and alarms to the caller's, as the
API's lists do; events are the county-wide case board (docs/city-operations.md)."""

from __future__ import annotations

import json

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput, NotFound
from spatial.importer import AREA_KINDS, check_pair

MAX_VERTICES = 2000

# KNN (<->) on degrees orders by a distorted distance (a degree of longitude is 0.83 of one
# of latitude at 34° N): take generous candidates by the index, then order them in metres
_NEAREST = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) AS pt),
cand AS (
    SELECT d.id, d.title, d.department_id, pr.category, d.latitude, d.longitude, d.geom
    FROM devices d JOIN profiles pr ON pr.id = d.profile_id, p
    WHERE d.geom IS NOT NULL
      AND (%(category)s::text IS NULL OR pr.category = %(category)s)
      AND (%(scoped)s = false OR d.department_id = ANY(%(departments)s))
    ORDER BY d.geom <-> p.pt LIMIT %(candidates)s)
SELECT id, title, department_id AS department, category, latitude, longitude,
       round(ST_Distance(cand.geom::geography, p.pt::geography)::numeric, 1)::float
           AS distance_m
FROM cand, p ORDER BY distance_m, id LIMIT %(limit)s"""

# the same for cameras (facilities of kind 'camera', migration 084): what the detail panel
# of an event or an alarm lists, nearest first
_NEAREST_CAMERAS = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490) AS pt),
cand AS (
    SELECT f.id, f.name AS title, f.department_id, 'camera' AS category, f.latitude,
           f.longitude, f.geom
    FROM facilities f, p
    WHERE f.kind = 'camera'
      AND (%(scoped)s = false OR f.department_id = ANY(%(departments)s))
    ORDER BY f.geom <-> p.pt LIMIT %(candidates)s)
SELECT id, title, department_id AS department, category, latitude, longitude,
       round(ST_Distance(cand.geom::geography, p.pt::geography)::numeric, 1)::float
           AS distance_m
FROM cand, p ORDER BY distance_m, id LIMIT %(limit)s"""

_EVENT_POINT = "SELECT longitude, latitude, NULL FROM events WHERE id = %s"
_ALARM_POINT = ("SELECT d.longitude, d.latitude, d.department_id FROM alarms a"
                " JOIN devices d ON d.id = a.device_id WHERE a.id = %s")


async def point_of(conn: AsyncConnection, *, event: int | None = None,
                   alarm: int | None = None) -> tuple[float, float, str | None]:
    """Where an event or an alarm (its device) is, and the alarm device's department;
    NotFound, or InvalidInput when it has no location."""
    what, key = ("event", event) if event is not None else ("alarm", alarm)
    cur = await conn.execute(_EVENT_POINT if what == "event" else _ALARM_POINT, (key,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{what} {key} does not exist")
    if row[0] is None or row[1] is None:
        raise InvalidInput(f"{what} {key} has no location on the map")
    return row[0], row[1], row[2]


async def nearest(conn: AsyncConnection, lon: float, lat: float, *, limit: int = 10,
                  category: str | None = None, departments: frozenset[str] | None = None,
                  cameras: bool = False) -> list[dict]:
    """The nearest devices (of a profile `category`), or with `cameras` the nearest
    cameras, in metres on the spheroid."""
    lon, lat = check_pair(lon, lat)
    params = {"lon": lon, "lat": lat, "category": category, "limit": limit,
              "candidates": max(limit * 4, 50), "scoped": departments is not None,
              "departments": sorted(departments or ())}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_NEAREST_CAMERAS if cameras else _NEAREST, params)
        return await cur.fetchall()


_WITHIN = """
WITH area AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(geojson)s), 4490) AS g)
SELECT
  (SELECT count(*) FROM devices d, area WHERE ST_Intersects(area.g, d.geom)
     AND (%(scoped)s = false OR d.department_id = ANY(%(departments)s))) AS devices,
  (SELECT count(*) FROM alarms a JOIN devices d ON d.id = a.device_id, area
     WHERE a.state <> 'cleared' AND ST_Intersects(area.g, d.geom)
     AND (%(scoped)s = false OR d.department_id = ANY(%(departments)s))) AS alarms_open,
  (SELECT count(*) FROM events e, area WHERE ST_Intersects(area.g, e.geom)
     AND e.state NOT IN ('closed', 'cancelled')) AS events_open,
  (SELECT count(*) FROM events e, area WHERE ST_Intersects(area.g, e.geom)) AS events,
  (SELECT count(*) FROM sites s, area WHERE ST_Intersects(area.g, s.geom)) AS sites,
  (SELECT round((ST_Area(area.g::geography) / 1e6)::numeric, 3)::float FROM area) AS area_km2
"""


def polygon_json(geometry: dict) -> str:
    """A drawn polygon as GeoJSON text, checked: type, size and coordinates."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Polygon":
        raise InvalidInput("geometry must be a GeoJSON Polygon")
    rings = geometry.get("coordinates")
    if not isinstance(rings, list) or not rings or not all(isinstance(r, list) for r in rings):
        raise InvalidInput("geometry.coordinates must be a list of rings")
    if sum(len(r) for r in rings) > MAX_VERTICES:
        raise InvalidInput(f"the polygon has more than {MAX_VERTICES} vertices")
    for number, ring in enumerate(rings):
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise InvalidInput(f"ring {number} must have 4 or more positions and be closed")
        for position in ring:
            if not isinstance(position, list) or len(position) < 2:
                raise InvalidInput(f"ring {number}: position {position!r} is not [lon, lat]")
            check_pair(position[0], position[1])
    return json.dumps({"type": "Polygon", "coordinates": rings})


async def within(conn: AsyncConnection, geometry: dict,
                 departments: frozenset[str] | None = None) -> dict:
    geojson = polygon_json(geometry)
    cur = await conn.execute("SELECT ST_IsValidReason(ST_GeomFromGeoJSON(%s))", (geojson,))
    reason = (await cur.fetchone())[0]
    if reason != "Valid Geometry":
        raise InvalidInput(f"the polygon is not valid: {reason}")
    params = {"geojson": geojson, "scoped": departments is not None,
              "departments": sorted(departments or ())}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_WITHIN, params)
        return await cur.fetchone()


_COUNTS = """
SELECT ar.code, ar.name,
  (SELECT count(*) FROM alarms a JOIN devices d ON d.id = a.device_id
     WHERE a.state <> 'cleared' AND ST_Intersects(ar.geom, d.geom)
     AND (%(scoped)s = false OR d.department_id = ANY(%(departments)s))) AS alarms_open,
  (SELECT count(*) FROM events e WHERE ST_Intersects(ar.geom, e.geom)
     AND e.state NOT IN ('closed', 'cancelled')) AS events_open,
  (SELECT count(*) FROM events e WHERE ST_Intersects(ar.geom, e.geom)) AS events
FROM areas ar WHERE ar.kind = %(kind)s ORDER BY ar.code"""

_UNASSIGNED = """SELECT count(*) FROM events WHERE area_assigned = false
    AND state NOT IN ('closed', 'cancelled')"""


async def counts_by_area(conn: AsyncConnection, kind: str,
                         departments: frozenset[str] | None = None) -> dict:
    if kind not in AREA_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(AREA_KINDS)}")
    params = {"kind": kind, "scoped": departments is not None,
              "departments": sorted(departments or ())}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COUNTS, params)
        areas = await cur.fetchall()
    cur = await conn.execute(_UNASSIGNED)
    return {"kind": kind, "areas": areas, "events_open_unassigned": (await cur.fetchone())[0]}
