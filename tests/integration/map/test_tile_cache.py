"""The tile cache (spatial/tile_cache.py): through the API, tiles are sent gzip-compressed and
served from the cache, a change the database announces (migration 083) shows before the
cache's own expiry would have let it, and `Cache-Control: no-cache` cuts a tile anew; alone,
one cut serves concurrent requests, entries expire, and a table's change drops its layers."""

from __future__ import annotations

import asyncio
import gzip

import psycopg
import pytest

from cityops.principal import Role
from spatial.tile_cache import TTL_S, TileCache, gunzip
from tests.component.test_events_kit import Api, api_client, cst, unique
from tests.helpers import wait_for
from tests.integration.map.mvt import decode
from tests.integration.map.test_map_api import tile_of

SPOT = (116.8312, 33.8815)  # a z15 tile of its own, away from the other map tests' devices


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:
        api.person("cache-admin", Role.ADMIN)
        api.gateway = unique("gw-cache")
        with psycopg.connect(api.url, autocommit=True) as conn:
            conn.execute("INSERT INTO gateways (id) VALUES (%s)", (api.gateway,))
            conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                         " ('cache-meter', 'modbus', 'power', '{}') ON CONFLICT DO NOTHING")
        yield api


def _path(z: int = 15) -> str:
    x, y = tile_of(*SPOT, z)
    return f"/v1/map/tiles/devices/{z}/{x}/{y}.mvt"


def _ids(api: Api, **headers: str) -> set[str]:
    res = api.client.get(_path(), headers={**api.headers("cache-admin"), **headers})
    assert res.status_code == 200, res.text
    return {f["id"] for f in decode(res.content).get("devices", [])}


def _place(api: Api, device: str) -> None:
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute("INSERT INTO devices (id, gateway_id, profile_id, longitude, latitude)"
                     " VALUES (%s, %s, 'cache-meter', %s, %s)", (device, api.gateway, *SPOT))


def test_tiles_are_gzipped_and_served_from_the_cache(api: Api) -> None:
    _place(api, unique("cache-a"))
    headers = {**api.headers("cache-admin"), "Accept-Encoding": "gzip"}
    # the test client decodes gzip itself: read the raw bytes to see what was sent
    with api.client.stream("GET", _path(), headers=headers) as res:
        sent = b"".join(res.iter_raw())
    assert res.headers["content-encoding"] == "gzip"
    assert decode(gzip.decompress(sent))["devices"]
    cache: TileCache = api.client.app.state.tile_cache
    hits = cache.hits
    plain = api.client.get(_path(), headers={**headers, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == gzip.decompress(sent)
    assert cache.hits == hits + 1


def test_an_announced_change_shows_before_the_cache_expires(api: Api) -> None:
    before = _ids(api, **{"Cache-Control": "no-cache"})  # a fresh entry: TTL_S to live
    moved = unique("cache-b")
    _place(api, moved)
    # the devices trigger's NOTIFY drops the cached tile: well within TTL_S, not after it
    wait_for(lambda: moved in _ids(api), timeout_s=TTL_S * 0.75, what="the new device")
    assert before < _ids(api)


def test_no_cache_cuts_the_tile_anew(api: Api) -> None:
    _ids(api)
    cache: TileCache = api.client.app.state.tile_cache
    misses = cache.misses
    _ids(api, **{"Cache-Control": "no-cache"})
    assert cache.misses == misses + 1


def test_one_cut_serves_concurrent_requests_and_entries_expire() -> None:
    cuts = 0

    async def cut() -> bytes:
        nonlocal cuts
        cuts += 1
        await asyncio.sleep(0.05)  # a statement in flight while the others arrive
        return b"tile" * 100

    async def run() -> None:
        cache = TileCache(ttl_s=0.2)
        key = ("devices", 9, 1, 2, None, None)
        entries = await asyncio.gather(*(cache.get(key, cut) for _ in range(20)))
        assert cuts == 1 and {gunzip(e) for e in entries} == {b"tile" * 100}
        assert (cache.misses, cache.hits) == (1, 19)
        await asyncio.sleep(0.25)  # past ttl_s: cut again
        await cache.get(key, cut)
        assert cuts == 2

    asyncio.run(run())


def test_a_failed_cut_reaches_every_waiter_and_is_not_kept() -> None:
    async def broken() -> bytes:
        await asyncio.sleep(0.01)
        raise RuntimeError("statement failed")

    async def run() -> None:
        cache = TileCache()
        key = ("devices", 9, 1, 2, None, None)
        results = await asyncio.gather(*(cache.get(key, broken) for _ in range(3)),
                                       return_exceptions=True)
        assert [str(r) for r in results] == ["statement failed"] * 3
        assert gunzip(await cache.get(key, lambda: asyncio.sleep(0, b"ok"))) == b"ok"

    asyncio.run(run())


def test_a_change_drops_only_the_layers_it_touches_and_size_is_bounded() -> None:
    async def run() -> TileCache:
        cache = TileCache(max_bytes=10_000)
        for layer in ("devices", "alarms", "events", "areas-grid", "areas-town", "sites"):
            await cache.get((layer, 12, 1, 1, None, None), lambda: asyncio.sleep(0, b"x" * 50))
        return cache

    cache = asyncio.run(run())
    assert cache.forget("areas") == 2
    assert cache.forget("devices") == 2  # devices, and alarms drawn at their devices
    assert cache.forget("unknown-table") == 2  # not listed: everything left
    cache = asyncio.run(run())
    big = bytes(range(256)) * 200  # hardly compressible: about 51 kB gzipped
    asyncio.run(cache.get(("sites", 16, 1, 1, None, None), lambda: asyncio.sleep(0, big)))
    assert cache._bytes <= cache.max_bytes  # the oldest (here all) went first
