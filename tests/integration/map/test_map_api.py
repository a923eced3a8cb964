"""The map's API over real PostGIS: vector tiles of each layer (decoded), the z/x/y range,
department scoping of devices and alarms, the nearest devices to a point, an event or an
alarm, what a drawn polygon holds, and counts by area."""

from __future__ import annotations

import math

import psycopg
import pytest

from cityops.principal import Role
from tests.api_kit import bearer
from tests.component.test_events_kit import Api, api_client, cst, unique
from tests.helpers import wait_for
from tests.integration.map.map_kit import seed_areas
from tests.integration.map.mvt import decode

CENTRE = (116.77, 33.92)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _world(url: str, a: str, b: str) -> dict:
    """Two departments' devices placed around the centre, a camera of each, an open alarm
    on A's meter, and events inside and outside the towns."""
    ids = {k: unique(k) for k in ("gw", "cam-a", "cam-b", "meter-a", "far-a", "rule")}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO gateways (id) VALUES (%s)", (ids["gw"],))
        for model, category in (("map-cam", "security"), ("map-meter", "power")):
            conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES"
                         " (%s, 'modbus', %s, '{}') ON CONFLICT DO NOTHING", (model, category))
        placed = [("cam-a", "map-cam", a, 116.771, 33.921), ("cam-b", "map-cam", b, 116.772,
                  33.919), ("meter-a", "map-meter", a, 116.775, 33.92),
                  ("far-a", "map-meter", a, 116.9, 34.05)]
        for key, profile, dept, lon, lat in placed:
            conn.execute("INSERT INTO devices (id, gateway_id, profile_id, department_id,"
                         " longitude, latitude) VALUES (%s, %s, %s, %s, %s, %s)",
                         (ids[key], ids["gw"], profile, dept, lon, lat))
        conn.execute("UPDATE gateways SET last_status = %s WHERE id = %s",
                     (psycopg.types.json.Jsonb({"devices": {ids["cam-a"]: "online"}}),
                      ids["gw"]))
        conn.execute("INSERT INTO rules (id, kind, severity, body) VALUES"
                     " (%s, 'threshold', 'major', '{}')", (ids["rule"],))
        ids["alarm"] = conn.execute(
            "INSERT INTO alarms (rule_id, device_id, severity, state, message) VALUES"
            " (%s, %s, 'major', 'active', 'over limit') RETURNING id",
            (ids["rule"], ids["meter-a"])).fetchone()[0]
    return ids


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:
        api.a = api.department(unique("map-a"))
        api.b = api.department(unique("map-b"))
        seed_areas(api.url, api.a)
        api.ids = _world(api.url, api.a, api.b)
        api.person("map-admin", Role.ADMIN)
        api.person("map-op2", Role.OPERATOR)
        api.person("map-staff-b", Role.DEPARTMENT_STAFF, api.b)
        api.person("map-tech", Role.FIELD_TECHNICIAN)
        body = {"channel": "hotline", "category_code": "E01.02", "description": "井盖缺失"}
        api.event_in = api.ok("map-op2", "POST", "/v1/events", 201, json={
            **body, "longitude": 116.7705, "latitude": 33.9205})["id"]
        api.event_out = api.ok("map-op2", "POST", "/v1/events", 201, json={
            **body, "longitude": 118.0, "latitude": 32.5})["id"]
        yield api


def tile(api: Api, who: str, layer: str, z: int = 14, at=CENTRE) -> dict[str, list[dict]]:
    x, y = tile_of(*at, z)
    res = api.get(who, f"/v1/map/tiles/{layer}/{z}/{x}/{y}.mvt")
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return decode(res.content)


def test_device_tile_holds_devices_with_status(api: Api) -> None:
    features = {f["id"]: f for f in tile(api, "map-admin", "devices")["devices"]}
    ids = api.ids
    assert {ids["cam-a"], ids["cam-b"], ids["meter-a"]} <= set(features)
    assert ids["far-a"] not in features  # another tile at zoom 14
    assert features[ids["cam-a"]]["status"] == "online"
    assert features[ids["cam-b"]]["status"] == "unknown"
    assert features[ids["cam-a"]]["category"] == "security"
    # below zoom 13 devices come as clusters: a count each
    clusters = tile(api, "map-admin", "devices", z=8)["devices"]
    assert all("id" not in c and "unowned" in c for c in clusters)
    assert sum(c["count"] for c in clusters) >= 4
    x, y = tile_of(*CENTRE, 8)
    with psycopg.connect(api.url) as conn:  # every device in the tile (and its margin)
        placed = conn.execute(
            "SELECT count(*) FROM devices WHERE geom && ST_Transform(ST_TileEnvelope(8, %s, %s,"
            " margin => 64.0 / 4096), 4490)", (x, y)).fetchone()[0]
    assert sum(c["count"] for c in clusters) == placed


def test_clusters_follow_devices_as_they_move(api: Api) -> None:
    """Zooms 8-12 read precomputed cells (migration 082): a moved device shows at once."""
    def total(who: str = "map-admin") -> int:
        return sum(c["count"] for c in tile(api, who, "devices", z=10).get("devices", []))
    before, before_b = total(), total("map-staff-b")
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute("UPDATE devices SET longitude = 116.7702, latitude = 33.9201"
                     " WHERE id = %s", (api.ids["far-a"],))
    # tiles are cached (spatial/tile_cache.py) until the devices trigger's NOTIFY drops them
    try:
        wait_for(lambda: total() == before + 1, timeout_s=3, what="the moved device")
        assert total("map-staff-b") == before_b  # far-a is department A's
    finally:
        with psycopg.connect(api.url, autocommit=True) as conn:
            conn.execute("UPDATE devices SET longitude = 116.9, latitude = 34.05"
                         " WHERE id = %s", (api.ids["far-a"],))
    wait_for(lambda: total() == before, timeout_s=3, what="the device moved back")


def test_low_zoom_tiles_are_stored_and_read_without_writing(api: Api) -> None:
    """Every department's zoom 8-12 device tiles are stored when devices change (migration
    250): the stored tile holds every device of the tile and its margin, a tile away from
    every device is empty, and reading tiles while nothing changed writes nothing (the state
    row is not locked: locking it made every tile request a WAL flush)."""
    x, y = tile_of(*CENTRE, 11)
    with psycopg.connect(api.url) as conn:
        placed = conn.execute(
            "SELECT count(*) FROM devices WHERE geom && ST_Transform(ST_TileEnvelope(11, %s,"
            " %s, margin => 64.0 / 4096), 4490)", (x, y)).fetchone()[0]
    assert sum(c["count"] for c in tile(api, "map-admin", "devices", z=11)["devices"]) == placed
    with psycopg.connect(api.url) as conn:
        stored = conn.execute("SELECT mvt FROM map_device_tiles WHERE (z, x, y) = (11, %s, %s)",
                              (x, y)).fetchone()
        lock = conn.execute("SELECT xmax FROM map_cells_state").fetchone()[0]
    assert stored is not None and decode(bytes(stored[0]))["devices"]
    assert tile(api, "map-admin", "devices", z=12, at=(100.0, 30.0)) == {}
    tile(api, "map-admin", "devices", z=9)
    with psycopg.connect(api.url) as conn:
        assert conn.execute("SELECT xmax FROM map_cells_state").fetchone()[0] == lock


def test_department_caller_sees_only_its_devices_and_alarms(api: Api) -> None:
    ids = api.ids
    seen = {f["id"] for f in tile(api, "map-staff-b", "devices").get("devices", [])}
    assert ids["cam-b"] in seen and ids["cam-a"] not in seen and ids["meter-a"] not in seen
    assert tile(api, "map-staff-b", "alarms") == {}
    alarms = tile(api, "map-admin", "alarms")["alarms"]
    ours = set(ids.values())  # the session's database also holds other tests' devices
    assert [(f["device"], f["severity"]) for f in alarms if f["device"] in ours] == [
        (ids["meter-a"], "major")]
    near = api.ok("map-staff-b", "GET", "/v1/map/nearest", params={"lon": 116.77,
                                                                    "lat": 33.92})
    assert {n["department"] for n in near} == {api.b}
    assert api.get("map-staff-b", "/v1/map/nearest",
                   params={"alarm": ids["alarm"]}).status_code == 403
    inside = api.ok("map-staff-b", "POST", "/v1/map/within", json={"geometry": SQUARE})
    assert inside["devices"] == 1 and inside["alarms_open"] == 0


def test_event_and_area_layers(api: Api) -> None:
    events = {f["id"]: f for f in tile(api, "map-admin", "events")["events"]}
    assert events[api.event_in]["state"] == "reported"
    assert events[api.event_in]["light"] in ("green", "yellow", "red")
    assert events[api.event_in]["assigned"] is True
    cells = tile(api, "map-admin", "areas-grid", z=11)["areas-grid"]
    assert len(cells) >= 4 and all(c["code"].startswith("340621001001") for c in cells)
    assert tile(api, "map-admin", "areas-grid", z=10) == {}  # cells are pixels there
    towns = tile(api, "map-admin", "areas-town", z=8)["areas-town"]
    assert {t["name"] for t in towns} == {"濉溪镇", "韩村镇"}
    # a responsibility area names its department (the map's label)
    resp = tile(api, "map-admin", "areas-responsibility", z=8)["areas-responsibility"]
    assert {(r["department"], r["department_name"]) for r in resp} == {(api.a, api.a)}
    assert api.get("map-tech", "/v1/map/tiles/events/14/0/0.mvt").status_code == 403
    # the heat map's period: an event reported 40 days ago is left out of the last 30
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute("UPDATE events SET reported_at = now() - interval '40 days'"
                     " WHERE id = %s", (api.event_in,))
    x, y = tile_of(*CENTRE, 14)
    recent = api.get("map-admin", f"/v1/map/tiles/events/14/{x}/{y}.mvt?days=30")
    assert api.event_in not in {f["id"] for f in decode(recent.content).get("events", [])}
    assert api.event_in in {f["id"] for f in tile(api, "map-admin", "events")["events"]}
    assert api.get("map-admin", f"/v1/map/tiles/events/14/{x}/{y}.mvt?days=0").status_code \
        == 422


@pytest.mark.parametrize(("path", "named"), [
    ("devices/23/0/0", "zoom 23"), ("devices/3/8/0", "x 8"), ("devices/3/0/-1", "y -1"),
    ("devices/0/1/0", "x 1"),
])
def test_tile_outside_the_range_is_422(api: Api, path: str, named: str) -> None:
    res = api.get("map-admin", f"/v1/map/tiles/{path}.mvt")
    assert res.status_code == 422
    assert res.json()["code"] == "invalid_input" and named in res.json()["detail"]


def test_unknown_layer_is_404(api: Api) -> None:
    res = api.get("map-admin", "/v1/map/tiles/rivers/3/0/0.mvt")
    assert res.status_code == 404 and "rivers" in res.json()["detail"]


def test_nearest_to_point_event_and_alarm(api: Api) -> None:
    ids = api.ids
    near = api.ok("map-admin", "GET", "/v1/map/nearest",
                  params={"event": api.event_in, "category": "security", "limit": 2})
    assert [n["id"] for n in near] == [ids["cam-a"], ids["cam-b"]]
    assert 0 < near[0]["distance_m"] < near[1]["distance_m"] < 300
    by_alarm = api.ok("map-admin", "GET", "/v1/map/nearest",
                      params={"alarm": ids["alarm"], "limit": 1})
    assert by_alarm[0]["id"] == ids["meter-a"] and by_alarm[0]["distance_m"] == 0
    both = api.get("map-admin", "/v1/map/nearest", params={"lon": 116.7, "event": 1})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]


SQUARE = {"type": "Polygon", "coordinates": [[[116.76, 33.91], [116.78, 33.91],
                                               [116.78, 33.93], [116.76, 33.93],
                                               [116.76, 33.91]]]}


def test_within_counts_what_the_polygon_holds(api: Api) -> None:
    got = api.ok("map-admin", "POST", "/v1/map/within", json={"geometry": SQUARE})
    # counted independently, without PostGIS: the square is a box in longitude and latitude,
    # and other tests of the session may have placed devices in it too
    with psycopg.connect(api.url) as conn:
        devices, alarms = conn.execute(
            "SELECT count(DISTINCT d.id), count(a.id) FILTER (WHERE a.state <> 'cleared')"
            " FROM devices d LEFT JOIN alarms a ON a.device_id = d.id"
            " WHERE d.longitude BETWEEN 116.76 AND 116.78 AND d.latitude BETWEEN 33.91 AND 33.93"
        ).fetchone()
    assert devices >= 3 and got["devices"] == devices and got["alarms_open"] == alarms >= 1
    assert got["events"] >= 1 and got["events_open"] >= 1
    assert 4 < got["area_km2"] < 6  # 0.02 degree square at 34 N: about 2.2 x 1.85 km
    bowtie = {"type": "Polygon", "coordinates": [[[116.76, 33.91], [116.78, 33.93],
                                                   [116.78, 33.91], [116.76, 33.93],
                                                   [116.76, 33.91]]]}
    bad = api.get("map-admin", "/v1/map/nearest")  # no point at all
    assert bad.status_code == 422
    res = api.post("map-admin", "/v1/map/within", json={"geometry": bowtie})
    assert res.status_code == 422 and "Self-intersection" in res.json()["detail"]


def test_counts_by_town_and_unassigned(api: Api) -> None:
    got = api.ok("map-admin", "GET", "/v1/map/areas/counts", params={"kind": "town"})
    towns = {a["code"]: a for a in got["areas"]}
    assert towns["340621100"]["alarms_open"] >= 1  # ours; other tests may add their own
    assert towns["340621100"]["events_open"] >= 1
    assert got["events_open_unassigned"] >= 1
    assert api.get("map-admin", "/v1/map/areas/counts",
                   params={"kind": "city"}).status_code == 422


def test_token_of_nobody_is_refused(api: Api) -> None:
    assert api.client.get("/v1/map/nearest", params={"lon": 116.7, "lat": 33.9}).status_code \
        == 401
    headers = bearer(api.settings, Role.VIEWER, name="map-viewer")
    assert api.client.get("/v1/map/tiles/areas-town/8/214/105.mvt",
                          headers=headers).status_code == 200
