"""The device layer's clusters at zooms CELLS_FROM..CLUSTER_BELOW-1, computed once when devices
change instead of per tile request (migrations 082 and 250, docs/map.md).

`map_device_cells` holds, per zoom, per cell of 1/64 of a tile's width and per department, the
count and mean position of the devices in it; a department-scoped caller's tile sums its
departments' cells per request. For callers who see every department the encoded tiles
themselves are kept in `map_device_tiles` (one primary-key read per request).

A statement trigger on devices marks both stale; the next low-zoom request recomputes them in
one transaction under an advisory lock while other requests read the previous rows."""

from __future__ import annotations

from psycopg import AsyncConnection

EXTENT, BUFFER = 4096, 64
CELLS_FROM, CELLS_BELOW = 8, 13  # the zooms kept here: CELLS_FROM..CELLS_BELOW-1
LAYER = "devices"

BOUNDS = (
    "WITH b AS (SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,"
    " ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4490)"
    " AS env_4490)")


def _cells_rows(z: str, x: str, y: str, env_4490: str, scope: str) -> str:
    """The clusters of one tile from the cells: each cell's departments summed, placed at
    their members' mean position."""
    return (
        "SELECT sum(t.count)::int AS count, sum(t.unowned)::int AS unowned,"
        " ST_AsMVTGeom(ST_Transform(ST_SetSRID(ST_MakePoint("
        "sum(ST_X(t.geom) * t.count) / sum(t.count), sum(ST_Y(t.geom) * t.count)"
        f" / sum(t.count)), 4490), 3857), ST_TileEnvelope({z}, {x}, {y}), {EXTENT}, {BUFFER},"
        f" true) AS geom FROM map_device_cells t WHERE t.z = {z} AND t.geom && {env_4490}"
        f"{scope} GROUP BY t.cx, t.cy")




def _cut_sql(scope: str) -> str:
    return (f"{BOUNDS}, rows AS ("
            + _cells_rows("%(z)s", "%(x)s", "%(y)s", "(SELECT env_4490 FROM b)", scope)
            + f") SELECT ST_AsMVT(rows, %(layer)s, {EXTENT}, 'geom') FROM rows")


# a department-scoped caller's tile: its departments' cells only, summed per request
SCOPED_SQL = _cut_sql(" AND t.department_id = ANY(%(departments)s)")
# what a stored tile holds, cut per request (bench-map's limit: the ST_AsMVT it replaces)
CUT_SQL = _cut_sql("")

# every department's tile: stored; a tile with no row is empty
STORED_SQL = "SELECT mvt FROM map_device_tiles WHERE z = %(z)s AND x = %(x)s AND y = %(y)s"

# the tiles worth storing: those holding a cell, and their neighbours (whose margin may)
_TILES = (
    "SELECT DISTINCT z, tx + dx AS x, ty + dy AS y FROM ("
    " SELECT DISTINCT z, floor((ST_X(geom) + 180) / 360 * (1 << z))::int AS tx,"
    " floor((1 - asinh(tan(radians(ST_Y(geom)))) / pi()) / 2 * (1 << z))::int AS ty"
    " FROM map_device_cells) c, generate_series(-1, 1) dx, generate_series(-1, 1) dy"
    " WHERE tx + dx BETWEEN 0 AND (1 << z) - 1 AND ty + dy BETWEEN 0 AND (1 << z) - 1")

_MARGIN = f"{BUFFER}.0 / {EXTENT}"
_REFRESH = [
    "DELETE FROM map_device_cells",
    "INSERT INTO map_device_cells (z, cx, cy, department_id, count, unowned, geom)"
    " SELECT z, floor(longitude / (360.0 / (1 << z) / 64))::int,"
    " floor(latitude / (360.0 / (1 << z) / 64))::int, department_id, count(*),"
    " count(*) FILTER (WHERE department_id IS NULL),"
    " ST_SetSRID(ST_MakePoint(avg(longitude), avg(latitude)), 4490)"
    " FROM devices, generate_series(%(low)s::int, %(high)s::int) z WHERE geom IS NOT NULL"
    " GROUP BY 1, 2, 3, 4",
    "DELETE FROM map_device_tiles",
    "INSERT INTO map_device_tiles (z, x, y, mvt) SELECT k.z, k.x, k.y, m.mvt"
    f" FROM ({_TILES}) k, LATERAL (SELECT ST_AsMVT(rows, '{LAYER}', {EXTENT}, 'geom') AS mvt"
    " FROM (" + _cells_rows("k.z", "k.x", "k.y", "ST_Transform(ST_TileEnvelope(k.z, k.x, k.y,"
                            f" margin => {_MARGIN}), 4490)", "") + ") rows) m"
    " WHERE length(m.mvt) > 0",
    "UPDATE map_cells_state SET dirty = false",
]


async def refresh(conn: AsyncConnection) -> bool:
    """Recompute the cells and stored tiles if devices changed; one refresher at a time (the
    others go on with the rows as they are). True when it refreshed.

    The usual answer, nothing changed, is a plain read: locking the state row on every tile
    request made each one a write with its own WAL flush (~50 ms for a zoom-8 tile)."""
    cur = await conn.execute("SELECT dirty FROM map_cells_state")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return False
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT pg_try_advisory_xact_lock(hashtext('map_device_cells'))"
            " AND (SELECT dirty FROM map_cells_state FOR UPDATE SKIP LOCKED)")
        if not (await cur.fetchone())[0]:
            return False
        for statement in _REFRESH:
            await conn.execute(statement, {"low": CELLS_FROM, "high": CELLS_BELOW - 1})
    return True


def kept(layer_precomputed: bool, z: int) -> bool:
    """Whether a tile of this zoom comes from the cells (a precomputed layer only)."""
    return layer_precomputed and CELLS_FROM <= z < CELLS_BELOW


def query(scoped: bool, cut: bool = False) -> str:
    """The statement of a tile; `cut`: every department's tile cut from the cells, not
    read from the stored tiles (how bench-map measures the work a stored tile saves)."""
    return SCOPED_SQL if scoped else CUT_SQL if cut else STORED_SQL
