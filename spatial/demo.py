"""The demo's map (`cityops map seed-demo`): 濉溪县 as a county area, synthetic town areas
and 单元网格 over it, the demo's sites and devices placed around the county seat, and a month
of closed events for the heat map, and cameras and facilities (hydrants, shelters, pumping
stations) around the seat. The town and cell shapes are generated rectangles, not
surveyed boundaries (a county imports its own: docs/map.md). Idempotent: areas are upserted,
only unplaced devices are placed, history events are added once."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import psycopg

from spatial.importer import import_areas

# the county's extent, roughly (CGCS2000); the seat, 濉溪镇, near its middle
WEST, SOUTH, EAST, NORTH = 116.50, 33.40, 117.05, 34.10
SEAT = (116.77, 33.92)
TOWNS = ["濉溪镇", "韩村镇", "刘桥镇", "五沟镇", "临涣镇", "双堆集镇", "铁佛镇", "南坪镇",
         "百善镇", "孙疃镇", "四铺镇", "烈山镇"]
COUNTY_CODE = "340621"
CELL_DEG = 0.025
HISTORY = [("E01.02", "暴露垃圾"), ("F01.01", "井盖缺失"), ("F01.02", "路灯不亮"),
           ("E01.03", "道路不洁"), ("E02.01", "非法小广告")]


def _square(west: float, south: float, east: float, north: float, code: str,
            name: str = "") -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Feature", "properties": {"code": code, "name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _towns() -> list[dict]:
    cols, rows = 3, 4
    width, height = (EAST - WEST) / cols, (NORTH - SOUTH) / rows
    return [_square(WEST + (i % cols) * width, SOUTH + (i // cols) * height,
                    WEST + (i % cols + 1) * width, SOUTH + (i // cols + 1) * height,
                    f"{COUNTY_CODE}{100 + i:03d}", name)
            for i, name in enumerate(TOWNS[:cols * rows])]


def _cells() -> list[dict]:
    """Cells over the seat's surroundings (about 2.5 km); GB/T 30428.1-shaped codes: the
    county code, a street code and a community code, then the cell number."""
    cells, n = [], 0
    for i in range(16):
        for j in range(16):
            n += 1
            west, south = SEAT[0] - 0.2 + i * CELL_DEG, SEAT[1] - 0.2 + j * CELL_DEG
            cells.append(_square(west, south, west + CELL_DEG, south + CELL_DEG,
                                 f"{COUNTY_CODE}100{i + 1:03d}{n:04d}"))
    return cells


def _place_devices(conn: psycopg.Connection) -> int:
    """Unplaced devices on a spiral around the seat, about 300 m apart."""
    rows = conn.execute("SELECT id FROM devices WHERE latitude IS NULL ORDER BY id").fetchall()
    for k, (device,) in enumerate(rows, start=1):
        angle, radius = k * 2.4, 0.003 * math.sqrt(k)
        conn.execute("UPDATE devices SET longitude = %s, latitude = %s WHERE id = %s",
                     (SEAT[0] + radius * math.cos(angle), SEAT[1] + radius * math.sin(angle),
                      device))
    conn.execute("UPDATE sites SET longitude = %s, latitude = %s WHERE latitude IS NULL",
                 SEAT)
    return len(rows)


def _history(conn: psycopg.Connection, count: int, now: datetime) -> int:
    """A month of closed cases, denser near the seat, for the heat map."""
    if conn.execute("SELECT EXISTS (SELECT FROM events WHERE reporter = 'demo-history')"
                    ).fetchone()[0]:
        return 0
    rng = random.Random(16)  # noqa: S311  (demo data, the same every time)
    for _ in range(count):
        code, what = rng.choice(HISTORY)
        at = now - timedelta(days=rng.uniform(0, 30))
        conn.execute(
            "INSERT INTO events (channel, reporter, category_code, urgency, description,"
            " longitude, latitude, state, reported_at, closed_at, updated_at)"
            " VALUES ('inspector', 'demo-history', %s, 'normal', %s, %s, %s, 'closed',"
            " %s, %s, %s)",
            (code, what, rng.gauss(SEAT[0], 0.05), rng.gauss(SEAT[1], 0.04), at,
             at + timedelta(hours=rng.uniform(2, 48)), at))
    return count


# the demo gateway's ONVIF camera (edge_agents/examples/demo-gateway.yaml) is the map's first
DEMO_CAMERA = ("demo-camera-1", "cam-01")
# facilities the demo places (kind, name, how many): cameras at the seat's crossings
FACILITIES = [("camera", "雪亮工程 监控点", 36), ("hydrant", "消火栓", 20),
              ("shelter", "应急避难场所", 4), ("pumping_station", "排涝泵站", 3)]


def _facilities(conn: psycopg.Connection) -> int:
    """Cameras and facilities around the seat, on a 0.01° lattice (about a kilometre); ids
    fixed so that a second run updates them in place."""
    rng = random.Random(84)  # noqa: S311  (demo data, the same every time)
    rows = []
    for kind, name, count in FACILITIES:
        for n in range(1, count + 1):
            lon = SEAT[0] + round(rng.uniform(-0.06, 0.06), 2) + rng.uniform(-4e-4, 4e-4)
            lat = SEAT[1] + round(rng.uniform(-0.05, 0.05), 2) + rng.uniform(-4e-4, 4e-4)
            code = f"34062100001320{n:06d}" if kind == "camera" else ""
            rows.append((f"demo-{kind}-{n}", kind, f"{name} {n}", code, lon, lat))
    conn.cursor().executemany(
        "INSERT INTO facilities (id, kind, name, code, longitude, latitude)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
        " longitude = excluded.longitude, latitude = excluded.latitude", rows)
    # its status, snapshots and wall input then work on the map (only where it is registered)
    conn.execute("UPDATE facilities SET device_id = %(device)s WHERE id = %(camera)s"
                 " AND device_id IS NULL AND EXISTS (SELECT FROM devices WHERE id = %(device)s)"
                 " AND NOT EXISTS (SELECT FROM facilities WHERE device_id = %(device)s)",
                 {"camera": DEMO_CAMERA[0], "device": DEMO_CAMERA[1]})
    return len(rows)


def seed_demo(conn: psycopg.Connection, events: int = 300,
              now: datetime | None = None) -> dict:
    county = _square(WEST, SOUTH, EAST, NORTH, COUNTY_CODE, "濉溪县")
    import_areas(conn, [county], kind="county", layer="demo-county", crs="CGCS2000")
    import_areas(conn, _towns(), kind="town", layer="demo-towns", crs="CGCS2000")
    cells = import_areas(conn, _cells(), kind="grid", layer="demo-grid", crs="CGCS2000")
    with conn.transaction():
        placed = _place_devices(conn)
        facilities = _facilities(conn)
        added = _history(conn, events, now or datetime.now(UTC))
    return {"towns": len(TOWNS), "cells": cells.stored, "devices_placed": placed,
            "facilities": facilities, "events_added": added}
