"""Vector tiles (Mapbox Vector Tile) of the map's layers, cut by PostGIS: ST_TileEnvelope
gives the tile in Web Mercator, the rows are found through their EPSG:4490 GiST index with the
envelope transformed once, and ST_AsMVTGeom clips and quantises them to the tile's grid.

A layer whose objects belong to departments takes `departments` (None: every department) and
keeps only theirs, as the API's lists do."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection, sql

from cityops.errors import InvalidInput, NotFound
from spatial import device_cells
from spatial.components import COMPONENTS, components_tile
from spatial.importer import AREA_KINDS

MAX_ZOOM = 22
CLUSTER_BELOW = device_cells.CELLS_BELOW
CLUSTER_CELLS = 64  # per tile side
EXTENT, BUFFER = device_cells.EXTENT, device_cells.BUFFER


@dataclass(frozen=True)
class Layer:
    columns: str        # the tile's attributes
    source: str         # FROM ... with the geometry as t.geom
    where: str = "TRUE"
    department: str | None = None  # the column a department-scoped caller is limited by
    # below this zoom the tile is empty: a grid cell is a pixel or two there, and 10,000 of
    # them made a 250 kB tile taking 200 ms (bench/map.py)
    min_zoom: int = 0
    # below this zoom, points are merged per cell of 1/64 of the tile (attribute `count`):
    # 100,000 devices in one zoom-8 tile were 2.4 MB and 2.8 s as single points
    cluster: str | None = None  # the clusters' extra attributes (aggregates)
    cluster_source: str | None = None  # FROM for clusters, when lighter than `source`
    # clusters read from map_device_cells/_tiles (spatial/device_cells.py), not grouped here
    precomputed: bool = False


# an event's light here is the wall-clock share of its step (the detail panel shows the one
# computed on the working calendar); the map needs it for thousands of events per tile
EVENT_LIGHT = """CASE WHEN t.state IN ('closed', 'cancelled') THEN NULL
    WHEN now() > least(t.step_deadline_at, t.total_deadline_at) THEN 'red'
    WHEN t.step_deadline_at IS NOT NULL AND extract(epoch FROM now() - t.step_started_at)
         >= 0.8 * extract(epoch FROM t.step_deadline_at - t.step_started_at) THEN 'yellow'
    ELSE 'green' END"""

LAYERS: dict[str, Layer] = {
    "devices": Layer(
        "t.id, t.title, t.department_id AS department, p.category,"
        " coalesce(g.last_status->'devices'->>t.id, 'unknown') AS status",
        "devices t JOIN profiles p ON p.id = t.profile_id JOIN gateways g ON g.id = t.gateway_id",
        department="t.department_id",
        # a device's status is in its gateway's jsonb: read per row for 100,000 devices it
        # took seconds; clusters carry the count only, the points their status
        cluster="count(*) FILTER (WHERE t.department_id IS NULL) AS unowned",
        cluster_source="devices t", precomputed=True),
    "alarms": Layer(
        "a.id, a.severity, a.state, a.device_id AS device, left(a.message, 120) AS message",
        "alarms a JOIN devices t ON t.id = a.device_id", "a.state <> 'cleared'",
        department="t.department_id"),
    "events": Layer(
        "t.id, t.state, t.category_code AS category, t.urgency, t.area_assigned AS assigned,"
        " extract(epoch FROM t.reported_at)::bigint AS reported_s, "
        f"{EVENT_LIGHT} AS light",
        "events t", "t.state <> 'cancelled'",
        cluster="count(*) FILTER (WHERE t.state <> 'closed') AS open"),
    "sites": Layer("t.id, t.name", "sites t"),
    # cameras are kept to a department-scoped caller's departments, as devices are
    "cameras": Layer("t.id, t.name, t.code, t.department_id AS department", "facilities t",
                     "t.kind = 'camera'", department="t.department_id"),
    "facilities": Layer("t.id, t.name, t.kind, t.department_id AS department",
                        "facilities t", "t.kind <> 'camera'"),
    # a responsibility area carries its department's name: the map labels it (CJK only:
    # Latin labels have no glyphs offline, docs/map.md)
    **{f"areas-{kind}": Layer("t.code, t.name, t.kind, t.department_id AS department,"
                              " dp.name AS department_name",
                              "areas t LEFT JOIN departments dp ON dp.id = t.department_id",
                              f"t.kind = '{kind}'",
                              min_zoom=11 if kind == "grid" else 0) for kind in AREA_KINDS},
}


def check_tile(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidInput(f"zoom {z} is outside 0..{MAX_ZOOM}")
    side = 1 << z
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value < side:
            raise InvalidInput(f"{name} {value} is outside 0..{side - 1} at zoom {z}")


_BOUNDS = device_cells.BOUNDS


def _cluster_sql(spec: Layer, where: str) -> str:
    """Points merged per cell (degrees: a cell is 1/64 of the tile's width), each cluster
    at its members' mean position; grouping reads the index-found rows once."""
    return (
        f"{_BOUNDS}, rows AS (SELECT count(*) AS count, {spec.cluster},"
        " ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(avg(ST_X(t.geom)),"
        " avg(ST_Y(t.geom))), 4490), 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),"
        f" {EXTENT}, {BUFFER}, true) AS geom"
        f" FROM {spec.cluster_source or spec.source}, b WHERE t.geom && b.env_4490 AND {where}"
        " GROUP BY floor(ST_X(t.geom) / %(cell)s), floor(ST_Y(t.geom) / %(cell)s))"
        f" SELECT ST_AsMVT(rows, %(layer)s, {EXTENT}, 'geom') FROM rows"
    )


def check_layer(layer: str) -> Layer | None:
    if layer == COMPONENTS:
        return None
    spec = LAYERS.get(layer)
    if spec is None:
        raise NotFound(f"map layer {layer!r} does not exist "
                       f"(layers: {', '.join([*LAYERS, COMPONENTS])})")
    return spec


def tile_query(layer: str, z: int, scoped: bool, recent: bool = False,
               cut: bool = False) -> sql.Composed:
    """The one statement cutting a tile of `layer`; parameters z, x, y (and departments).
    `cut`: a stored tile cut anew (spatial/device_cells.py)."""
    spec = check_layer(layer)
    if spec is None:
        raise InvalidInput(f"layer {layer!r} has no single statement (see components_tile)")
    where = spec.where
    if scoped and spec.department:
        where += f" AND {spec.department} = ANY(%(departments)s)"
    if z < spec.min_zoom:
        where += " AND FALSE"
    if recent and layer == "events":  # the heat map's period
        where += " AND t.reported_at >= now() - make_interval(days => %(days)s)"
    if device_cells.kept(spec.precomputed, z):
        return sql.SQL(device_cells.query(scoped, cut))  # type: ignore[arg-type]
    if spec.cluster and z < CLUSTER_BELOW:
        return sql.SQL(_cluster_sql(spec, where))  # type: ignore[arg-type]
    text = (
        f"{_BOUNDS}, rows AS (SELECT {spec.columns},"
        f" ST_AsMVTGeom(ST_Transform(t.geom, 3857), b.env, {EXTENT}, {BUFFER}, true) AS geom"
        f" FROM {spec.source}, b"
        f" WHERE t.geom && b.env_4490 AND {where})"
        " SELECT ST_AsMVT(rows, %(layer)s, " + str(EXTENT) + ", 'geom') FROM rows"
    )
    return sql.SQL(text)  # type: ignore[arg-type]  # built from constants above only


def tile_params(layer: str, z: int, x: int, y: int,
                departments: frozenset[str] | None, days: int | None = None) -> dict:
    return {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer": layer,
            "departments": sorted(departments or ()),
            "cell": 360.0 / (1 << z) / CLUSTER_CELLS, "days": days}


async def tile(conn: AsyncConnection, layer: str, z: int, x: int, y: int,
               departments: frozenset[str] | None, days: int | None = None) -> bytes:
    """`days`: only events reported in the last so many days (events layer)."""
    check_tile(z, x, y)
    if layer == COMPONENTS:
        return await components_tile(conn, z, x, y)
    spec = LAYERS.get(layer)
    if spec is not None and device_cells.kept(spec.precomputed, z):
        await device_cells.refresh(conn)
    query = tile_query(layer, z, departments is not None, days is not None)
    cur = await conn.execute(query, tile_params(layer, z, x, y, departments, days))
    row = await cur.fetchone()  # none: a stored layer's tile away from every device
    return bytes(row[0] or b"") if row else b""
