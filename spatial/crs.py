"""Coordinate systems that arrive at a county platform, and conversion to what is stored.

Stored: CGCS2000 (EPSG:4490). WGS84 differs from it by well under a metre at county scale, so
both are stored as they are. GCJ-02 (the obfuscated system required of public online maps in
China, a 50-700 m shift) and BD-09 (Baidu's, a further shift on top of GCJ-02) come from
geocoded hotline tickets and phone apps; they are converted here on import.

GCJ-02 is defined by a published forward formula (WGS84 -> GCJ-02) with no closed inverse; the
inverse here iterates the forward formula until the round trip is below a millimetre, instead
of the one-step approximation (metres of error) many tools use.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from cityops.errors import InvalidInput

CRS_NAMES = ("CGCS2000", "WGS84", "GCJ-02", "BD-09")

# Krasovsky 1940 ellipsoid, which the GCJ-02 formula is written against
_A = 6378245.0
_EE = 0.00669342162296594323
_BD_K = math.pi * 3000.0 / 180.0


def _shift_lat(x: float, y: float) -> float:
    out = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    out += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    out += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    out += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2 / 3
    return out


def _shift_lon(x: float, y: float) -> float:
    out = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    out += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    out += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    out += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    return out


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    dlat = _shift_lat(x, y) * 180.0 / ((_A * (1 - _EE)) / (magic * math.sqrt(magic)) * math.pi)
    dlon = _shift_lon(x, y) * 180.0 / (_A / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


def _invert(forward: Callable[[float, float], tuple[float, float]], lon: float, lat: float,
            start: tuple[float, float]) -> tuple[float, float]:
    """The point `forward` takes to (lon, lat), by fixed-point iteration from `start`: the
    shifts vary slowly, so a few rounds bring the round trip under 1e-10 degrees."""
    guess_lon, guess_lat = start
    for _ in range(30):
        fwd_lon, fwd_lat = forward(guess_lon, guess_lat)
        err_lon, err_lat = fwd_lon - lon, fwd_lat - lat
        guess_lon, guess_lat = guess_lon - err_lon, guess_lat - err_lat
        if abs(err_lon) < 1e-10 and abs(err_lat) < 1e-10:
            break
    return guess_lon, guess_lat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    return _invert(wgs84_to_gcj02, lon, lat, (lon, lat))


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    z = math.hypot(lon, lat) + 0.00002 * math.sin(lat * _BD_K)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _BD_K)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.hypot(x, y) - 0.00002 * math.sin(y * _BD_K)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _BD_K)
    return z * math.cos(theta), z * math.sin(theta)


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """The published BD-09 inverse is itself approximate (about 0.1 m): refined the same way."""
    gcj = _invert(gcj02_to_bd09, lon, lat, bd09_to_gcj02(lon, lat))
    return gcj02_to_wgs84(*gcj)


def _same(lon: float, lat: float) -> tuple[float, float]:
    return lon, lat


_TO_STORED: dict[str, Callable[[float, float], tuple[float, float]]] = {
    "CGCS2000": _same, "WGS84": _same, "GCJ-02": gcj02_to_wgs84, "BD-09": bd09_to_wgs84,
}


def converter(crs: str) -> Callable[[float, float], tuple[float, float]]:
    """The function taking (lon, lat) in `crs` to the stored CGCS2000."""
    try:
        return _TO_STORED[crs]
    except KeyError:
        raise InvalidInput(f"crs {crs!r} is not one of {', '.join(CRS_NAMES)}") from None
