"""Event analysis through the API on real PostgreSQL+PostGIS: a seeded hot spot is found and
the scatter around it is not; a recurring problem is listed with its trend; a duplicate report
is offered for merging and merged; a stored forecast's error is measured against the naive
one; department performance per week. The module's own categories and a far-future clock keep
it apart from other tests' events in the session database."""

import math
import random
from datetime import timedelta

import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

START = cst(2031, 3, 3, 9, 0)  # a Monday
PLACE = (116.7712, 33.9158)  # 濉溪县城, lon/lat


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, START) as api:
        api.tag = unique("t17").replace("-", "").upper()[:9]
        api.dept = api.department(unique("cgj"), "城管局")
        with psycopg.connect(api.url) as conn:
            for suffix in "HRDFP":
                conn.execute("INSERT INTO event_categories (code, kind, major, minor)"
                             " VALUES (%s, 'incident', '测试', %s)",
                             (f"{api.tag}.{suffix}", f"分析{suffix}"))
        api.person("an-disp", Role.DISPATCHER)
        api.person("an-viewer", Role.VIEWER)
        api.person("an-op", Role.OPERATOR)
        api.person("an-staff", Role.DEPARTMENT_STAFF, api.dept)
        yield api


def _insert(api: Api, rows: list[tuple]) -> None:
    """(category suffix, reported_at, grid, lon, lat) rows as reported events."""
    with psycopg.connect(api.url) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO events (channel, reporter, category_code, urgency, description, grid,"
            " longitude, latitude, reported_at) VALUES ('hotline', 'seed', %s, 'normal',"
            " 'seeded', %s, %s, %s, %s)",
            [(f"{api.tag}.{c}", grid, lon, lat, at) for c, at, grid, lon, lat in rows])


def test_a_seeded_hotspot_is_found_and_the_scatter_is_not(api: Api) -> None:
    rng = random.Random(17)
    rows = []
    for cell in range(20):
        for week in range(9):
            n = 9 if (cell == 3 and week == 8) else rng.choice((0, 1, 1, 2))
            at = START - timedelta(weeks=9 - week) + timedelta(hours=5)
            rows += [("H", at + timedelta(minutes=i), f"G{api.tag}{cell:02d}", None, None)
                     for i in range(n)]
    _insert(api, rows)
    spots = api.ok("an-viewer", "GET", "/v1/analysis/hotspots",
                   params={"category": f"{api.tag}.H", "until": START.isoformat()})
    assert [(s["area"], s["current"]) for s in spots] == [(f"G{api.tag}03", 9)]
    assert spots[0]["q_value"] <= 0.05 and spots[0]["expected"] < 2
    assert api.get("an-staff", "/v1/analysis/hotspots").status_code == 403


def _near(metres_east: float) -> tuple[float, float]:
    return PLACE[0] + metres_east / (111_320 * math.cos(math.radians(PLACE[1]))), PLACE[1]


def test_a_recurring_problem_is_listed_with_its_trend(api: Api) -> None:
    rows = [("R", START - timedelta(days=d), "", *_near(e))
            for d, e in ((20, 0), (9, 15), (4, 30), (2, 10), (1, 25))]
    rows += [("R", START - timedelta(days=3), "", *_near(e)) for e in (2000, 4000, 6000)]
    _insert(api, rows)
    places = api.ok("an-op", "GET", "/v1/analysis/recurring",
                    params={"category": f"{api.tag}.R", "until": START.isoformat(),
                            "days": 28, "radius_m": 50})
    assert len(places) == 1, places
    assert places[0]["events"] == 5 and places[0]["trend"] == "rising"
    assert places[0]["weekly"] == [0, 1, 1, 3]
    assert abs(places[0]["longitude"] - _near(16)[0]) < 0.001


def _report(api: Api, metres_east: float) -> int:
    lon, lat = _near(metres_east)
    body = {"channel": "hotline", "category_code": f"{api.tag}.D", "description": "井盖缺失",
            "longitude": lon, "latitude": lat}
    return api.ok("an-op", "POST", "/v1/events", 201, json=body)["id"]


def test_a_duplicate_report_is_offered_and_merged(api: Api) -> None:
    first = _report(api, 0)
    again, far = _report(api, 20), _report(api, 800)
    pending = api.ok("an-disp", "GET", "/v1/merge-suggestions", params={"event_id": again})
    assert [(p["duplicate_of"], round(p["distance_m"])) for p in pending] == [(first, 20)]
    assert api.ok("an-disp", "GET", "/v1/merge-suggestions", params={"event_id": far}) == []
    assert api.post("an-viewer", f"/v1/merge-suggestions/{pending[0]['id']}/accept"
                    ).status_code == 403
    done = api.ok("an-disp", "POST", f"/v1/merge-suggestions/{pending[0]['id']}/accept")
    assert done["state"] == "accepted" and done["decided_by"] == "an-disp"
    merged = api.ok("an-disp", "GET", f"/v1/events/{again}")
    assert merged["state"] == "cancelled"
    res = api.post("an-disp", f"/v1/merge-suggestions/{pending[0]['id']}/refuse")
    assert res.status_code == 409 and res.json()["code"] == "conflict"


def test_a_kept_forecast_is_measured_against_what_came(api: Api) -> None:
    rng = random.Random(5)
    counts = [max(0, round(12 + 6 * math.sin(2 * math.pi * w / 13) + rng.gauss(0, 1)))
              for w in range(64)]
    base = START - timedelta(weeks=64)
    _insert(api, [("F", base + timedelta(weeks=w, hours=h), "", None, None)
                  for w, n in enumerate(counts) for h in range(n)])
    category = f"{api.tag}.F"
    api.clock.now = START - timedelta(weeks=8)
    made = api.ok("an-disp", "POST", "/v1/analysis/forecast", params={"category": category})
    assert len(made["forecast"]) == 4 and made["history"][-1]["count"] == counts[55]
    api.clock.now = START - timedelta(weeks=4)
    api.ok("an-disp", "POST", "/v1/analysis/forecast", params={"category": category})
    api.clock.now = START
    acc = api.ok("an-viewer", "GET", "/v1/analysis/forecast/accuracy",
                 params={"category": category})
    assert acc["weeks"] == 8 and acc["mae"] < acc["naive_mae"], acc
    short = api.get("an-viewer", "/v1/analysis/forecast", params={"category": f"{api.tag}.P"})
    assert short.status_code == 422 and "no events" in short.json()["detail"]


def test_department_performance_per_week(api: Api) -> None:
    events = [api.ok("an-op", "POST", "/v1/events", 201, json={
        "channel": "hotline", "category_code": f"{api.tag}.P", "description": f"测试{i}",
        "address": f"地址{i}"})["id"] for i in range(2)]
    for event in events:
        api.ok("an-disp", "POST", f"/v1/events/{event}/register", json={})
        api.ok("an-disp", "POST", f"/v1/events/{event}/dispatch", json={"department_id": api.dept})
    api.ok("an-staff", "POST", f"/v1/events/{events[0]}/accept", json={})
    api.ok("an-staff", "POST", f"/v1/events/{events[0]}/feedback", json={"note": "已处置"})
    api.clock.now += timedelta(hours=1)  # the week up to now, now excluded
    weeks = api.ok("an-viewer", "GET", "/v1/analysis/departments",
                   params={"department": api.dept, "weeks": 1})
    assert [(w["dispatched"], w["disposed"], w["on_time_rate"], w["closure_rate"])
            for w in weeks] == [(2, 1, 1.0, 0.0)]
