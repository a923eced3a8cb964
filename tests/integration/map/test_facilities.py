"""Cameras and facilities (migration 084) and city components (部件) from the raw layer:
a CSV import refusing rows by number and reason, the cameras and facilities tiles (cameras
scoped to a department's caller), the nearest cameras to an event, and the components tile
read from a synced `raw_<system>.components` table without its deleted rows."""

from __future__ import annotations

import psycopg
import pytest

from cityops.principal import Role
from datafoundation.raw import ensure_table
from datafoundation.sources import Column
from spatial.facilities import import_facilities
from tests.component.test_events_kit import Api, api_client, cst, unique
from tests.integration.map.map_kit import seed_areas
from tests.integration.map.mvt import decode
from tests.integration.map.test_map_api import tile_of

SPOT = (116.9312, 33.8113)  # a corner of the test county nobody else uses


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:
        api.a = api.department(unique("fac-a"))
        api.b = api.department(unique("fac-b"))
        seed_areas(api.url, api.a)
        api.person("fac-admin", Role.ADMIN)
        api.person("fac-op", Role.OPERATOR)
        api.person("fac-staff-b", Role.DEPARTMENT_STAFF, api.b)
        api.ids = {k: unique(k) for k in ("cam-a", "cam-b", "hydrant", "far")}
        rows = [
            {"id": api.ids["cam-a"], "lon": SPOT[0] + 0.0003, "lat": SPOT[1], "name": "路口 A",
             "code": "34062100001320000001", "department": api.a},
            {"id": api.ids["cam-b"], "lon": SPOT[0] + 0.002, "lat": SPOT[1], "name": "路口 B",
             "department": api.b},
            {"id": api.ids["hydrant"], "kind": "hydrant", "lon": SPOT[0], "lat": SPOT[1] + 3e-4,
             "name": "消火栓 1"},
            {"id": "bad id!", "lon": SPOT[0], "lat": SPOT[1]},
            {"id": unique("nodept"), "lon": SPOT[0], "lat": SPOT[1], "department": "no-such"},
            {"id": api.ids["far"], "lon": 118.5, "lat": 32.0},
        ]
        with psycopg.connect(api.url, autocommit=True) as conn:
            api.report = import_facilities(conn, rows, kind="camera", layer=unique("cams"),
                                           crs="CGCS2000").as_dict()
        yield api


def _tile(api: Api, who: str, layer: str, z: int = 15) -> list[dict]:
    x, y = tile_of(*SPOT, z)
    res = api.get(who, f"/v1/map/tiles/{layer}/{z}/{x}/{y}.mvt")
    assert res.status_code == 200, res.text
    return decode(res.content).get(layer, [])


def test_import_refuses_rows_by_number_and_lists_points_outside(api: Api) -> None:
    report = api.report
    assert report["stored"] == 4
    assert [r["row"] for r in report["refused"]] == [5, 6]
    assert "identifier" in report["refused"][0]["reason"]
    assert "no-such" in report["refused"][1]["reason"]
    assert [o["id"] for o in report["outside_county"]] == [api.ids["far"]]


def test_camera_and_facility_tiles_and_department_scope(api: Api) -> None:
    ids = api.ids
    cameras = {f["id"]: f for f in _tile(api, "fac-admin", "cameras")}
    assert {ids["cam-a"], ids["cam-b"]} <= set(cameras) and ids["hydrant"] not in cameras
    assert cameras[ids["cam-a"]]["code"] == "34062100001320000001"
    facilities = {f["id"]: f for f in _tile(api, "fac-admin", "facilities")}
    assert facilities[ids["hydrant"]]["kind"] == "hydrant"
    seen_b = {f["id"] for f in _tile(api, "fac-staff-b", "cameras")}
    assert ids["cam-b"] in seen_b and ids["cam-a"] not in seen_b


def test_nearest_cameras_to_an_event(api: Api) -> None:
    event = api.ok("fac-op", "POST", "/v1/events", 201, json={
        "channel": "hotline", "category_code": "E01.02", "description": "占道经营",
        "longitude": SPOT[0], "latitude": SPOT[1]})["id"]
    near = api.ok("fac-admin", "GET", "/v1/map/nearest",
                  params={"event": event, "of": "cameras", "limit": 2})
    assert [n["id"] for n in near] == [api.ids["cam-a"], api.ids["cam-b"]]
    assert 20 < near[0]["distance_m"] < 35 and near[0]["category"] == "camera"
    refused = api.get("fac-admin", "/v1/map/nearest",
                      params={"event": event, "of": "cameras", "category": "security"})
    assert refused.status_code == 422 and "cameras" in refused.json()["detail"]


def test_components_tile_reads_the_raw_layer(api: Api) -> None:
    schema = f"raw_{unique('cg').replace('-', '_')}"
    columns = [Column("id", "bigint"), Column("code", "text"), Column("kind_name", "text"),
               Column("status", "text"), Column("lon", "double precision"),
               Column("lat", "double precision")]
    with psycopg.connect(api.url, autocommit=True) as conn:
        ensure_table(conn, schema, "components", columns, ["id"])
        conn.execute(
            f"INSERT INTO {schema}.components (id, code, kind_name, status, lon, lat,"
            " _deleted_at) VALUES (1, 'c-kept', '路灯', '完好', %s, %s, NULL),"
            " (2, 'c-gone', '井盖', '丢失', %s, %s, now())", (*SPOT, *SPOT))
    try:
        drawn = [f for f in _tile(api, "fac-admin", "components", z=17)
                 if f.get("system") == schema.removeprefix("raw_")]
        assert [(f["code"], f["kind"], f["status"]) for f in drawn] == [
            ("c-kept", "路灯", "完好")]
        assert _tile(api, "fac-admin", "components", z=10) == []  # below its zoom
    finally:
        with psycopg.connect(api.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
