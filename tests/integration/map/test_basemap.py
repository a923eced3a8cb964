"""The basemap: a county's PMTiles file served with HTTP range requests (as MapLibre's pmtiles
protocol reads it), and, without one, the default outline decoded from the npm package's
ECharts encoding."""

from __future__ import annotations

import os

import pytest

from cityops.principal import Role
from spatial.basemap import SOURCE, decode_echarts_map, decode_ring
from tests.component.test_events_kit import api_client, cst


def _encode(points: list[tuple[int, int]], start: tuple[int, int]) -> str:
    """ECharts' encoding, written out here to check the decoder against it."""
    out, (px, py) = [], start
    for x, y in points:
        for step in (x - px, y - py):
            out.append(chr(((step << 1) ^ (step >> 31)) + 64))
        px, py = x, y
    return "".join(out)


def test_decode_ring_inverts_the_encoding() -> None:
    points = [(119600, 34700), (119610, 34690), (119590, 34720), (119600, 34700)]
    ring = decode_ring(_encode(points, (119590, 34710)), [119590, 34710])
    assert ring == [[x / 1024, y / 1024] for x, y in points]


def test_default_outline_holds_suixi() -> None:
    doc = decode_echarts_map(SOURCE.read_text(encoding="utf-8"))
    suixi = next(f for f in doc["features"] if f["properties"]["name"] == "濉溪县")
    ring = suixi["geometry"]["coordinates"][0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    assert suixi["properties"]["code"] == "340621"
    assert 116.3 < min(lons) < max(lons) < 117.1 and 33.2 < min(lats) < max(lats) < 34.1
    assert ring[0] == ring[-1] and len(ring) > 50


@pytest.fixture(scope="module")
def county_file(tmp_path_factory) -> bytes:
    return os.urandom(200_000)


def test_pmtiles_ranges_and_default(settings, tmp_path, county_file) -> None:
    path = tmp_path / "county.pmtiles"
    path.write_bytes(county_file)
    with api_client(settings.model_copy(update={"map_pmtiles_path": path}),
                    cst(2026, 11, 16, 9)) as api:
        api.person("map-base", Role.VIEWER)
        assert api.ok("map-base", "GET", "/v1/map/basemap")["kind"] == "pmtiles"
        part = api.client.get("/v1/map/basemap.pmtiles",
                              headers={**api.headers("map-base"), "Range": "bytes=127-16510"})
        assert part.status_code == 206
        assert part.content == county_file[127:16511]
        assert part.headers["content-range"] == f"bytes 127-16510/{len(county_file)}"
        beyond = api.client.get("/v1/map/basemap.pmtiles",
                                headers={**api.headers("map-base"), "Range": "bytes=300000-300010"})
        assert beyond.status_code == 416
        assert api.client.get("/v1/map/basemap.pmtiles").status_code == 401
    with api_client(settings, cst(2026, 11, 16, 9)) as api:
        api.person("map-base", Role.VIEWER)
        info = api.ok("map-base", "GET", "/v1/map/basemap")
        assert info == {"kind": "outline", "url": "/v1/map/basemap.geojson",
                        "attribution": info["attribution"]}
        outline = api.ok("map-base", "GET", "/v1/map/basemap.geojson")
        assert "濉溪县" in {f["properties"]["name"] for f in outline["features"]}
        missing = api.get("map-base", "/v1/map/basemap.pmtiles")
        assert missing.status_code == 404 and "PMTILES_PATH" in missing.json()["detail"]
