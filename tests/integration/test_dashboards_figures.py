"""The dashboards' figures checked against counts computed independently here, on data made
through the platform: ingested batches and readings of a department, dead letters, files,
API-key calls (metered by the API) and catalogue grants and calls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta

import orjson
import psycopg
import pytest

from cityevents.calendar import COUNTY_TZ
from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, unique
from tests.helpers import wait_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 100
PROFILE = {"model": "dash-thermo", "protocol": "modbus", "category": "environment",
           "points": [{"name": "temp", "data_type": "float32",
                       "range": {"min": 0, "max": 50}}]}
# (value, quality) of the readings stamped yesterday: 2 out of range, 1 bad, 1 uncertain
READINGS = [(10, 0), (20, 0), (60, 0), (-5, 0), (30, 2), (25, 1)]
BATCHES = {"yesterday": [5, 7, 11], "today": [2, 3]}


def _yesterday(now: datetime) -> tuple[datetime, datetime]:
    start = datetime.combine(now.astimezone(COUNTY_TZ).date() - timedelta(days=1), time(0),
                             COUNTY_TZ)
    return start, start + timedelta(days=1)


def _seed(url: str, dept: str, now: datetime) -> None:
    """Rows as the ingest worker and the registry write them, with known times."""
    y0, _ = _yesterday(now)
    gateway, device = f"gw-{dept}", f"{dept}-thermo"
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO profiles (id, protocol, category, body) VALUES (%s, %s, %s,"
                     " %s) ON CONFLICT DO NOTHING", (PROFILE["model"], "modbus", "environment",
                                                     orjson.dumps(PROFILE).decode()))
        conn.execute("INSERT INTO gateways (id, department_id) VALUES (%s, %s)", (gateway, dept))
        conn.execute("INSERT INTO devices (id, gateway_id, profile_id, department_id)"
                     " VALUES (%s, %s, %s, %s)", (device, gateway, PROFILE["model"], dept))
        point = conn.execute("INSERT INTO points (device_id, name, data_type) VALUES (%s,"
                             " 'temp', 'float32') RETURNING id", (device,)).fetchone()[0]
        for i, (value, quality) in enumerate(READINGS):
            conn.execute("INSERT INTO readings (time, point_id, value, quality)"
                         " VALUES (%s, %s, %s, %s)",
                         (y0 + timedelta(hours=9, minutes=i), point, value, quality))
        for when, sizes in (("yesterday", BATCHES["yesterday"]), ("today", BATCHES["today"])):
            at = y0 + timedelta(hours=10) if when == "yesterday" else now
            for n in sizes:
                # a third of each batch arrived late (e.g. drained after an outage)
                conn.execute("INSERT INTO ingested_batches (gateway_id, stream, seq, readings,"
                             " late, stored_at) VALUES (%s, %s, 1, %s, %s, %s)",
                             (gateway, uuid.uuid4(), n, n // 3, at))
        conn.execute("INSERT INTO dead_letters (received_at, topic, payload, reason, detail)"
                     " VALUES (%s, 't', 'x', 'schema', 'd'), (%s, 't', 'y', 'schema', 'd')",
                     (y0 + timedelta(hours=11), y0 + timedelta(hours=12)))


def _sql(url: str, query: str, *params) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


@pytest.fixture(scope="module")
def api(settings):
    now = datetime.now(UTC).replace(microsecond=0)
    with api_client(settings, now) as api:
        api.dept = api.department(unique("dash"), "县生态环境分局")
        api.person("dash-staff", Role.DEPARTMENT_STAFF, api.dept)
        api.person("dash-app", Role.DEPARTMENT_STAFF, api.department(unique("dash-app")))
        api.person("dash-viewer", Role.VIEWER)
        api.person("dash-admin", Role.ADMIN)
        _seed(api.url, api.dept, now)
        yield api


def test_ingestion_dashboard_matches_independent_counts(api: Api) -> None:
    code = api.ok("dash-staff", "POST", "/v1/catalogue/resources", 201, json={
        "classification": "3.01.002", "name": "空气质量监测报告", "provider_id": api.dept,
        "format": "pdf", "sharing_type": "unconditional", "update_cycle": "monthly",
        "published_on": "2026-11-01"})["code"]
    api.ok("dash-staff", "POST", f"/v1/catalogue/resources/{code}/attachments", 201,
           files={"file": ("photo.png", PNG, "image/png")})
    y0, y1 = _yesterday(api.clock.now)
    board = api.ok("dash-viewer", "GET", "/v1/dashboards/ingestion")
    assert board["day"] == y0.date().isoformat()

    mine = next(d for d in board["departments"] if d["department_id"] == api.dept)
    assert mine["readings"] == sum(BATCHES["yesterday"]) + sum(BATCHES["today"])
    assert mine["readings_yesterday"] == sum(BATCHES["yesterday"])
    assert (mine["objects"], mine["object_bytes"], mine["objects_yesterday"]) == (1, len(PNG), 0)

    url = api.url
    totals = _sql(url, "SELECT (SELECT coalesce(sum(readings), 0) FROM ingested_batches),"
                  " (SELECT count(*) FROM events), (SELECT count(*) FROM enterprise_indicators),"
                  " (SELECT count(*) FROM objects), (SELECT coalesce(sum(size_bytes), 0)"
                  " FROM objects)")
    t = board["totals"]
    assert (t["readings"], t["events"], t["enterprise_rows"], t["objects"],
            t["object_bytes"]) == totals
    assert t["structured_rows"] == totals[0] + totals[1] + totals[2]
    stored_yesterday = _sql(url, "SELECT coalesce(sum(readings), 0) FROM ingested_batches"
                            " WHERE stored_at >= %s AND stored_at < %s", y0, y1)[0]
    assert board["yesterday"]["readings"] == stored_yesterday

    quality = next(q for q in board["quality"]["departments"] if q["department_id"] == api.dept)
    assert quality["readings"] == len(READINGS)
    assert quality["good"] == sum(q == 0 for _, q in READINGS)
    assert quality["bad"] == 1 and quality["uncertain"] == 1
    assert quality["out_of_range"] == sum(not 0 <= v <= 50 for v, _ in READINGS)
    assert quality["accepted_share"] == round(4 / 6, 4)
    overall = _sql(url, "SELECT count(*), count(*) FILTER (WHERE quality = 0) FROM readings"
                   " WHERE time >= %s AND time < %s", y0, y1)
    assert (board["quality"]["readings"], board["quality"]["good"]) == overall
    dead = _sql(url, "SELECT count(*) FROM dead_letters WHERE received_at >= %s"
                " AND received_at < %s", y0, y1)[0]
    assert board["quality"]["dead_letters"] == dead >= 2
    late, arrived = _sql(url, "SELECT sum(late), sum(readings) FROM ingested_batches"
                         " WHERE stored_at >= %s AND stored_at < %s", *_yesterday(api.clock.now))
    assert late > 0
    assert board["quality"]["late_share"] == round(late / arrived, 4)

    csv = api.get("dash-viewer", "/v1/dashboards/ingestion", params={"format": "csv"})
    assert csv.status_code == 200 and api.dept in csv.text
    assert api.get("dash-app", "/v1/dashboards/ingestion").status_code == 200
    assert api.client.get("/v1/dashboards/ingestion").status_code == 401


def test_services_dashboard_matches_metering_and_grants(api: Api) -> None:
    code = api.ok("dash-staff", "POST", "/v1/catalogue/resources", 201, json={
        "classification": "3.01.003", "name": "噪声监测点位", "provider_id": api.dept,
        "format": "api", "sharing_type": "unconditional", "update_cycle": "daily",
        "published_on": "2026-11-01"})["code"]
    applied = api.ok("dash-app", "POST", f"/v1/catalogue/resources/{code}/requests", 201,
                     json={"application": f"noise-{uuid.uuid4().hex[:4]}",
                           "purpose": "夜间施工噪声投诉核查比对"})
    key = {"X-API-Key": applied["key"]}
    for _ in range(3):
        assert api.client.get(f"/v1/catalogue/resources/{code}/data",
                              headers=key).status_code == 200
    assert api.get("dash-viewer", f"/v1/catalogue/resources/{code}/data").status_code == 403
    assert api.client.get("/v1/events", headers=key).status_code == 403  # out of scope
    key_id = _sql(api.url, "SELECT api_key_id FROM grants WHERE request_id = %s",
                  applied["request"]["id"])[0]
    wait_for(lambda: _sql(api.url, "SELECT count(*) FROM api_calls WHERE key_id = %s",
                          key_id)[0] == 4, timeout_s=15, what="the API's metering flush")

    api.clock.now = datetime.now(UTC)  # the metering stamps calls on the real clock
    board = api.ok("dash-viewer", "GET", "/v1/dashboards/services", params={"top": 200})
    calls = _sql(api.url, "SELECT count(*), count(*) FILTER (WHERE status < 400),"
                 " count(*) FILTER (WHERE status >= 400) FROM api_calls")
    assert (board["calls"]["calls"], board["calls"]["succeeded"], board["calls"]["failed"]) \
        == calls
    route = "GET /v1/catalogue/resources/{code}/data"
    in_a_day = _sql(api.url, "SELECT count(*) FROM api_calls WHERE method || ' ' || route = %s"
                    " AND time >= %s AND time <= %s", route,
                    api.clock.now - timedelta(days=1), api.clock.now)[0]
    popular = {p["service"]: p for p in board["popular"]["1d"]}
    assert popular[route]["calls"] == in_a_day >= 3
    apps = {a["application"]: a for a in board["applications"]}
    name = _sql(api.url, "SELECT name FROM api_keys WHERE id = %s", key_id)[0]
    assert (apps[name]["calls"], apps[name]["succeeded"]) == (4, 3)
    use = next(r for r in board["resources"] if r["code"] == code)
    assert (use["grants"], use["live_grants"], use["calls"], use["refused_calls"]) == (1, 1, 3, 1)
    requests = _sql(api.url, "SELECT count(*) FROM access_requests")[0]
    assert board["portal"]["requests"] == requests
    csv = api.get("dash-viewer", "/v1/dashboards/services",
                  params={"format": "csv", "section": "applications"})
    assert name in csv.text
