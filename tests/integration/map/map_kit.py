"""Areas for the map's tests: a square county around 濉溪县, two towns, a grid of cells and a
responsibility area, built as GeoJSON the way a county would import them."""

from __future__ import annotations

import psycopg

from spatial.importer import import_areas

WEST, SOUTH, EAST, NORTH = 116.60, 33.80, 117.00, 34.10


def square(west: float, south: float, east: float, north: float, code: str, **props) -> dict:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Feature", "properties": {"code": code, **props},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def grid_cells(step: float = 0.1) -> list[dict]:
    """Cells of `step` degrees over the county; codes in the GB/T 30428.1 shape
    (county code + street + community + cell number)."""
    cells, n = [], 0
    lon = WEST
    while lon < EAST - 1e-9:
        lat = SOUTH
        while lat < NORTH - 1e-9:
            n += 1
            cells.append(square(lon, lat, lon + step, lat + step, f"340621001001{n:03d}"))
            lat += step
        lon += step
    return cells


def seed_areas(url: str, department: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES (%s, %s)"
                     " ON CONFLICT DO NOTHING", (department, department))
        conn.execute("DELETE FROM areas")
        import_areas(conn, [square(WEST, SOUTH, EAST, NORTH, "340621", name="濉溪县")],
                     kind="county", layer="t-county", crs="CGCS2000")
        mid = (WEST + EAST) / 2
        import_areas(conn, [square(WEST, SOUTH, mid, NORTH, "340621100", name="濉溪镇"),
                            square(mid, SOUTH, EAST, NORTH, "340621101", name="韩村镇")],
                     kind="town", layer="t-towns", crs="CGCS2000")
        import_areas(conn, [square(WEST, SOUTH, mid, (SOUTH + NORTH) / 2, "340621100001",
                                   name="东关社区")],
                     kind="community", layer="t-communities", crs="CGCS2000")
        import_areas(conn, grid_cells(), kind="grid", layer="t-grid", crs="CGCS2000")
        import_areas(conn, [square(mid, SOUTH, EAST, NORTH, f"resp-{department}",
                                   department=department)],
                     kind="responsibility", layer="t-resp", crs="CGCS2000")
