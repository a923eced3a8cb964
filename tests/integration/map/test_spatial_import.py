"""Coordinate conversion against published reference pairs, and imports against the real
PostGIS of the project's cluster: refused rows with their reasons, repairs reported,
points outside the county flagged, each layer's coordinate system recorded."""

from __future__ import annotations

import json

import psycopg
import pytest

from spatial import crs
from spatial.importer import import_areas, import_points, read_point_rows
from tests.integration.map.map_kit import seed_areas, square

# (input lon, lat) -> expected, from the GCJ-02 / BD-09 formulas' widely published examples
REFERENCE = [
    (crs.wgs84_to_gcj02, (116.404, 39.915), (116.41024449916938, 39.91640428150164)),
    (crs.gcj02_to_bd09, (116.404, 39.915), (116.41036949371029, 39.92133699351022)),
    (crs.bd09_to_gcj02, (116.404, 39.915), (116.39762729119315, 39.90865673957631)),
]


@pytest.mark.parametrize(("fn", "given", "expected"), REFERENCE)
def test_conversion_matches_reference_points(fn, given, expected) -> None:
    got = fn(*given)
    assert got == pytest.approx(expected, abs=1e-9)


def test_gcj02_inverse_round_trips_below_a_millimetre() -> None:
    for lon, lat in [(116.77, 33.92), (121.47, 31.23), (87.6, 43.8)]:
        back = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
        assert back == pytest.approx((lon, lat), abs=1e-8)
        # the one-step inverse many tools use is metres off; ours is not that
        assert crs.wgs84_to_gcj02(lon, lat) != pytest.approx((lon, lat), abs=1e-3)
    bd = crs.gcj02_to_bd09(*crs.wgs84_to_gcj02(116.77, 33.92))
    assert crs.bd09_to_wgs84(*bd) == pytest.approx((116.77, 33.92), abs=1e-7)


def test_unknown_crs_is_refused_by_name() -> None:
    with pytest.raises(Exception, match="crs 'EPSG:3857' is not one of"):
        crs.converter("EPSG:3857")


def test_area_import_refuses_repairs_and_converts(database_url: str) -> None:
    seed_areas(database_url, "dept-map-a")
    bowtie = {"type": "Feature", "properties": {"code": "bow"},
              "geometry": {"type": "Polygon", "coordinates": [[
                  [116.7, 33.9], [116.8, 34.0], [116.8, 33.9], [116.7, 34.0], [116.7, 33.9]]]}}
    swapped = square(33.9, 116.7, 34.0, 116.8, "swapped")
    far = square(110.0, 30.0, 110.1, 30.1, "far")
    nocode = square(116.7, 33.9, 116.8, 34.0, "")
    gcj = square(116.7, 33.9, 116.8, 34.0, "gcj")
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = import_areas(conn, [bowtie, swapped, far, nocode, gcj], kind="community",
                              layer="t-bad", crs="GCJ-02")
        reasons = {r["row"]: r["reason"] for r in report.refused}
        assert "Self-intersection" in reasons[1]
        assert "(latitude, longitude) order" in reasons[2]
        assert "outside the county" in reasons[3]
        assert "'code' is missing" in reasons[4]
        assert report.stored == 1
        repaired = import_areas(conn, [bowtie], kind="community", layer="t-fix",
                                crs="WGS84", repair=True)
        assert repaired.stored == 1
        assert "ST_MakeValid" in repaired.repaired[0]["reason"]
        valid, west = conn.execute("SELECT ST_IsValid(geom), ST_XMin(geom) FROM areas"
                                   " WHERE code = 'bow'").fetchone()
        assert valid
        assert west == pytest.approx(116.7)
        # the GCJ-02 square was moved back by the published shift (hundreds of metres)
        gcj_west = conn.execute("SELECT ST_XMin(geom) FROM areas"
                                " WHERE code = 'gcj'").fetchone()
        expected = min(crs.gcj02_to_wgs84(116.7, lat)[0] for lat in (33.9, 34.0))
        assert gcj_west[0] == pytest.approx(expected, abs=1e-9)
        assert abs(gcj_west[0] - 116.7) > 0.002
        layer = conn.execute("SELECT source_crs, rows_stored, report FROM map_layers"
                             " WHERE name = 't-bad'").fetchone()
        assert layer[0] == "GCJ-02" and layer[1] == 1
        assert len(layer[2]["refused"]) == 4


def test_shapefile_areas_import_with_their_fields(database_url: str, tmp_path) -> None:
    import shapefile

    from spatial.importer import read_area_file

    seed_areas(database_url, "dept-map-a")
    with shapefile.Writer(str(tmp_path / "towns"), shapeType=shapefile.POLYGON) as out:
        out.field("CODE", "C", size=20)
        out.field("NAME", "C", size=40)
        out.poly([[[116.70, 33.90], [116.70, 33.95], [116.75, 33.95], [116.75, 33.90],
                   [116.70, 33.90]]])
        out.record("340621199", "百善镇")
        out.poly([[[116.70, 33.90], [116.75, 33.95], [116.75, 33.90], [116.70, 33.95],
                   [116.70, 33.90]]])
        out.record("340621198", "自交")
    features = read_area_file(tmp_path / "towns.shp")
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = import_areas(conn, features, kind="town", layer="t-shp", crs="CGCS2000")
        assert report.stored == 1, report.refused
        assert report.refused[0]["row"] == 2
        assert "Self-intersection" in report.refused[0]["reason"]
        name, area = conn.execute("SELECT name, ST_Area(geom) FROM areas WHERE kind = 'town'"
                                  " AND code = '340621199'").fetchone()
    assert name == "百善镇" and area == pytest.approx(0.0025)
    with pytest.raises(Exception, match="not a readable Shapefile"):
        read_area_file(tmp_path / "missing.shp")


def test_point_csv_import_flags_outside_and_refuses_bad_rows(database_url: str,
                                                              tmp_path) -> None:
    seed_areas(database_url, "dept-map-a")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO sites (id, name) VALUES ('s-in', 'in'), ('s-out', 'out')"
                     " ON CONFLICT DO NOTHING")
    path = tmp_path / "sites.csv"
    path.write_text("\ufeffid,lon,lat\ns-in,116.77,33.92\ns-out,118.5,32.0\n"
                    "s-in,33.92,116.77\nnobody,116.7,33.9\ns-in,abc,33.9\n", encoding="utf-8")
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = import_points(conn, read_point_rows(path), table="sites", layer="t-sites",
                               crs="WGS84")
        assert report.stored == 2
        assert report.outside_county == [{"row": 3, "id": "s-out"}]
        reasons = {r["row"]: r["reason"] for r in report.refused}
        assert set(reasons) == {4, 5, 6}
        assert "order" in reasons[4] and "no site 'nobody'" in reasons[5]
        assert "not numbers" in reasons[6]
        geom = conn.execute("SELECT ST_AsGeoJSON(geom), ST_SRID(geom) FROM sites"
                            " WHERE id = 's-in'").fetchone()
        assert json.loads(geom[0])["coordinates"] == [116.77, 33.92]
        assert geom[1] == 4490
