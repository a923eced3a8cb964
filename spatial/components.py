"""City components (部件: manhole covers, lamps, hydrants...) on the map, read from the data
foundation's raw layer when a source system's `components` table has been synced there
(datafoundation/raw.py: schema `raw_<system>`, e.g. the 城管 inventory of
simulators/departments/components.py). Nothing is copied: the tile is cut from the raw rows,
so it shows what the last sync brought, without the rows a source deleted.

The raw table has no geometry column (it mirrors its source), so rows are found by their
`lon`/`lat` range; an inventory of tens of thousands of rows is read in a few ms per tile,
and the tile cache (spatial/tile_cache.py) keeps each cut for a few seconds. Coordinates are
taken as CGCS2000/WGS84 (what the 城管 inventory stores); a source in GCJ-02 must be
converted in its topic layer first."""

from __future__ import annotations

from psycopg import AsyncConnection, sql

COMPONENTS = "components"
MIN_ZOOM = 12  # below it a county's inventory is a smear of pixels
EXTENT, BUFFER = 4096, 64

_FIND = (
    "SELECT table_schema FROM information_schema.columns WHERE table_name = 'components'"
    " AND table_schema LIKE 'raw\\_%' AND column_name IN ('lon', 'lat', '_deleted_at')"
    " GROUP BY table_schema HAVING count(*) = 3 ORDER BY table_schema")

# the attributes are read through to_jsonb: a source whose table lacks one gives NULL
_ROWS = (
    "SELECT j->>'code' AS code, j->>'kind_name' AS kind, j->>'status' AS status,"
    " j->>'grid' AS grid, {system} AS system,"
    f" ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint(t.lon, t.lat), 4490), 3857), b.env,"
    f" {EXTENT}, {BUFFER}, true) AS geom"
    " FROM {table} t CROSS JOIN LATERAL to_jsonb(t) j, b"
    " WHERE t._deleted_at IS NULL"
    " AND t.lon BETWEEN ST_XMin(b.env_4490) AND ST_XMax(b.env_4490)"
    " AND t.lat BETWEEN ST_YMin(b.env_4490) AND ST_YMax(b.env_4490)")

_BOUNDS = (
    "WITH b AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,"
    " ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4490)"
    " AS env_4490)")


async def component_schemas(conn: AsyncConnection) -> list[str]:
    """The raw schemas holding a synced `components` table with lon/lat."""
    cur = await conn.execute(_FIND)
    return [row[0] for row in await cur.fetchall()]


def components_query(schemas: list[str]) -> sql.Composed:
    parts = [sql.SQL(_ROWS).format(system=sql.Literal(schema.removeprefix("raw_")),
                                   table=sql.Identifier(schema, COMPONENTS))
             for schema in schemas]
    return sql.SQL("{} , rows AS ({}) SELECT ST_AsMVT(rows, %(layer)s, {}, 'geom') FROM rows"
                   ).format(sql.SQL(_BOUNDS), sql.SQL(" UNION ALL ").join(parts),
                            sql.Literal(EXTENT))


async def components_tile(conn: AsyncConnection, z: int, x: int, y: int) -> bytes:
    """The 部件 tile; empty below MIN_ZOOM or when no source's components were synced."""
    if z < MIN_ZOOM:
        return b""
    schemas = await component_schemas(conn)
    if not schemas:
        return b""
    cur = await conn.execute(components_query(schemas), {
        "z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer": COMPONENTS})
    row = await cur.fetchone()
    return bytes(row[0] or b"")
