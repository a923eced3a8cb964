"""Import areas (GeoJSON polygons) and points (GeoJSON points or CSV with lon/lat) into the
map. Each row is checked and either stored, repaired and reported, or refused with its row
number and the reason; nothing is fixed silently. The whole import is one transaction and is
recorded in map_layers with the coordinate system the file came in."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from cityops.csv_files import read_csv
from cityops.errors import InvalidInput
from spatial.crs import converter

AREA_KINDS = ("county", "town", "community", "grid", "responsibility")
POINT_TABLES = ("devices", "sites")
# mainland China, generously: a pair outside it, swapped, falls inside it
_LON, _LAT = (73.0, 136.0), (3.0, 54.0)


@dataclass
class Report:
    layer: str
    stored: int = 0
    refused: list[dict] = field(default_factory=list)
    repaired: list[dict] = field(default_factory=list)
    outside_county: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"layer": self.layer, "stored": self.stored, "refused": self.refused,
                "repaired": self.repaired, "outside_county": self.outside_county}


def check_pair(lon: object, lat: object) -> tuple[float, float]:
    """A (lon, lat) pair as numbers; the reason it is not one otherwise."""
    try:
        lon_f, lat_f = float(lon), float(lat)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"coordinates ({lon!r}, {lat!r}) are not numbers") from None
    in_china = _LON[0] <= lon_f <= _LON[1] and _LAT[0] <= lat_f <= _LAT[1]
    if not in_china and _LON[0] <= lat_f <= _LON[1] and _LAT[0] <= lon_f <= _LAT[1]:
        raise InvalidInput(f"coordinates ({lon_f}, {lat_f}) are in (latitude, longitude) "
                           "order: longitude comes first")
    if not (-180 <= lon_f <= 180 and -90 <= lat_f <= 90):
        raise InvalidInput(f"coordinates ({lon_f}, {lat_f}) are not a longitude/latitude")
    return lon_f, lat_f


def _convert(coords: object, to_stored: Callable) -> object:
    """Every position of a GeoJSON coordinates array, checked and converted."""
    # lists from JSON, tuples from pyshp's __geo_interface__
    if isinstance(coords, list | tuple) and coords and isinstance(coords[0], int | float):
        if len(coords) < 2:
            raise InvalidInput(f"position {list(coords)!r} needs longitude and latitude")
        return list(to_stored(*check_pair(coords[0], coords[1])))
    if not isinstance(coords, list | tuple):
        raise InvalidInput("geometry coordinates must be arrays")
    return [_convert(c, to_stored) for c in coords]


def read_features(path: Path) -> list[dict]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:
        raise InvalidInput(f"{path}: not a readable GeoJSON file ({err})") from err
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidInput(f"{path}: a GeoJSON FeatureCollection is expected")
    return list(doc.get("features") or [])


def read_shapefile(path: Path) -> list[dict]:
    """A Shapefile's (path to .shp, with its .shx and .dbf) features as GeoJSON; DBF field
    names are matched case-insensitively (CODE, NAME, DEPARTMENT). pyshp is imported here only.
    """
    import shapefile

    try:
        reader = shapefile.Reader(str(path))
    except (shapefile.ShapefileException, OSError) as err:
        raise InvalidInput(f"{path}: not a readable Shapefile ({err})") from err
    features = []
    with reader:
        for item in reader.iterShapeRecords():
            try:
                geometry = item.shape.__geo_interface__
            except Exception:  # a null or unreadable shape: refused row by row on import
                geometry = {}
            props = {str(k).lower(): v for k, v in item.record.as_dict().items()}
            features.append({"type": "Feature", "properties": props, "geometry": geometry})
    return features


def read_area_file(path: Path) -> list[dict]:
    return read_shapefile(path) if path.suffix.lower() == ".shp" else read_features(path)


def _county_check(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT FROM areas WHERE kind = 'county')").fetchone()[0]


_AREA_SQL = """
WITH g AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(geojson)s), 4490) AS raw)
SELECT ST_IsValid(raw), ST_IsValidReason(raw), GeometryType(raw),
       NOT %(county)s OR EXISTS (SELECT FROM areas c WHERE c.kind = 'county'
                                 AND ST_Intersects(c.geom, ST_MakeValid(raw)))
FROM g"""

_AREA_UPSERT = """
INSERT INTO areas (kind, code, name, department_id, layer, geom)
VALUES (%(kind)s, %(code)s, %(name)s, %(department)s, %(layer)s,
        ST_Multi(ST_CollectionExtract(ST_MakeValid(
            ST_SetSRID(ST_GeomFromGeoJSON(%(geojson)s), 4490)), 3)))
ON CONFLICT (kind, code) DO UPDATE SET name = excluded.name, layer = excluded.layer,
    department_id = excluded.department_id, geom = excluded.geom"""


def _area_row(conn: psycopg.Connection, feature: dict, kind: str, to_stored: Callable,
              county: bool, repair: bool) -> tuple[dict, str | None]:
    """The row to store and the repair made, or InvalidInput naming the reason."""
    props = feature.get("properties") or {}
    geometry = feature.get("geometry") or {}
    if geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(f"an area must be a Polygon or MultiPolygon, not "
                           f"{geometry.get('type')!r}")
    code = str(props.get("code") or "").strip()
    if not code:
        raise InvalidInput("property 'code' is missing (a grid cell's GB/T 30428.1 code, a "
                           "town's or community's administrative code)")
    department = props.get("department") or None
    if kind == "responsibility" and department is None:
        raise InvalidInput("a responsibility area needs property 'department'")
    geojson = json.dumps({"type": geometry["type"],
                          "coordinates": _convert(geometry.get("coordinates"), to_stored)})
    try:
        with conn.transaction():
            valid, reason, _, inside = conn.execute(
                _AREA_SQL, {"geojson": geojson, "county": county and kind != "county"}
            ).fetchone()
    except psycopg.Error as err:
        raise InvalidInput(f"geometry not readable: {err.diag.message_primary}") from err
    if not inside:
        raise InvalidInput("the area lies outside the county")
    if not valid and not repair:
        raise InvalidInput(f"invalid geometry: {reason} (import with repair to apply "
                           "ST_MakeValid)")
    row = {"kind": kind, "code": code, "name": str(props.get("name") or ""),
           "department": department, "geojson": geojson}
    return row, None if valid else f"repaired with ST_MakeValid: {reason}"


def import_areas(conn: psycopg.Connection, features: Iterable[dict], *, kind: str,
                 layer: str, crs: str, repair: bool = False) -> Report:
    if kind not in AREA_KINDS:
        raise InvalidInput(f"kind {kind!r} is not one of {', '.join(AREA_KINDS)}")
    to_stored, report = converter(crs), Report(layer)
    with conn.transaction():
        county = _county_check(conn)
        for number, feature in enumerate(features, start=1):
            try:
                row, repaired = _area_row(conn, feature, kind, to_stored, county, repair)
                with conn.transaction():
                    conn.execute(_AREA_UPSERT, row | {"layer": layer})
            except InvalidInput as err:
                report.refused.append({"row": number, "reason": str(err)})
                continue
            except psycopg.errors.ForeignKeyViolation:
                report.refused.append({"row": number, "reason": f"department "
                                       f"{row['department']!r} is not registered"})
                continue
            report.stored += 1
            if repaired:
                report.repaired.append({"row": number, "code": row["code"], "reason": repaired})
        _record(conn, layer, kind, crs, report)
    return report


def _record(conn: psycopg.Connection, layer: str, kind: str, crs: str, report: Report) -> None:
    conn.execute(
        "INSERT INTO map_layers (name, kind, source_crs, rows_stored, report)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind,"
        " source_crs = excluded.source_crs, rows_stored = excluded.rows_stored,"
        " report = excluded.report, imported_at = now()",
        (layer, kind, crs, report.stored, json.dumps(report.as_dict())),
    )


def read_point_rows(path: Path) -> list[dict]:
    """CSV with columns id, lon, lat (a header row; UTF-8 with or without BOM, GBK, UTF-16:
    cityops/csv_files.py); each row carries its spreadsheet number as `_row`."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InvalidInput(f"{path}: not readable ({err})") from err
    table = read_csv(data, str(path))
    header = [c.strip() for c in table.rows[0][1]] if table.rows else []
    missing = {"id", "lon", "lat"} - set(header)
    if missing:
        raise InvalidInput(f"{path}: columns {', '.join(sorted(missing))} are missing "
                           f"(id, lon, lat expected; {table.encoding} read)")
    return [{**dict(zip(header, cells, strict=False)), "_row": number}
            for number, cells in table.rows[1:] if any(c.strip() for c in cells)]


def import_points(conn: psycopg.Connection, rows: Iterable[dict], *, table: str,
                  layer: str, crs: str) -> Report:
    """Place existing devices or sites: rows of {id, lon, lat}. A point outside the county
    is stored and reported (it shows on the map as unassigned), never dropped."""
    if table not in POINT_TABLES:
        raise InvalidInput(f"table {table!r} is not one of {', '.join(POINT_TABLES)}")
    to_stored, report = converter(crs), Report(layer)
    update = sql.SQL(
        "UPDATE {} AS t SET longitude = %s, latitude = %s WHERE id = %s RETURNING NOT %s OR EXISTS"
        " (SELECT FROM areas c WHERE c.kind = 'county' AND ST_Intersects(c.geom, t.geom))"
    ).format(sql.Identifier(table))
    with conn.transaction():
        county = _county_check(conn)
        for number, row in enumerate(rows, start=2):  # row 1 is the header
            number = row.get("_row", number)  # as the spreadsheet shows it (blank lines)
            try:
                lon, lat = to_stored(*check_pair(row.get("lon"), row.get("lat")))
            except InvalidInput as err:
                report.refused.append({"row": number, "reason": str(err)})
                continue
            found = conn.execute(update, (lon, lat, row.get("id"), county)).fetchone()
            if found is None:
                report.refused.append({"row": number, "reason": f"no {table[:-1]} "
                                       f"{row.get('id')!r}"})
                continue
            report.stored += 1
            if not found[0]:
                report.outside_county.append({"row": number, "id": row.get("id")})
        _record(conn, layer, table, crs, report)
    return report
