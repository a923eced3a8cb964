"""The indicator system on real PostgreSQL through the API: starter indicators computed from
seeded events and economy rows match counts made independently here; bad definitions are
refused naming what is wrong; a failing query marks its period failed (never zero); a red
value raises an alarm that opens an event, a green one clears it. A far-future clock keeps the
module's periods apart from other tests' data in the session database."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cityevents.calendar import COUNTY_TZ
from cityops.principal import Role
from tests.component.indicator_kit import load_starter
from tests.component.test_events_kit import Api, api_client, unique

DAY = datetime(2032, 6, 7, tzinfo=COUNTY_TZ)  # a Monday
NOW = DAY + timedelta(days=7, hours=2)


@pytest.fixture(scope="module")
def api(settings):
    load_starter(settings.database_url.get_secret_value())
    with api_client(settings, NOW) as api:
        api.person("ind-admin", Role.DATA_ADMIN)
        api.person("ind-viewer", Role.VIEWER)
        api.person("ind-op", Role.OPERATOR)
        api.dept = api.department(unique("jxw"), "经信委")
        api.tag = unique("T").replace("-", "").upper()[:7]
        with psycopg.connect(api.url) as conn:
            conn.execute("INSERT INTO event_categories (code, kind, major, minor) VALUES"
                         " (%s, 'incident', '测试', '指标测试')", (f"{api.tag}.E",))
        yield api


def _events(api: Api, rows: list[dict]) -> None:
    cols = ("channel", "reporter", "category_code", "urgency", "description", "reported_at",
            "state", "department_id", "disposed_at", "disposed_on_time", "rework_count")
    base = {"reporter": "seed", "category_code": "E01.02", "urgency": "normal",
            "description": "seeded", "state": "reported", "department_id": None,
            "disposed_at": None, "disposed_on_time": None, "rework_count": 0}
    with psycopg.connect(api.url) as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO events ({', '.join(cols)}) VALUES"
                        f" ({', '.join(['%s'] * len(cols))})",
                        [tuple({**base, **r}[c] for c in cols) for r in rows])


def _compute(api: Api, code: str, since: datetime) -> dict:
    return api.ok("ind-admin", "POST", f"/v1/indicators/{code}/compute",
                  params={"since": since.isoformat()})


def _value(api: Api, code: str, period: datetime, dimension: str = "") -> float | None:
    series = api.ok("ind-viewer", "GET", f"/v1/indicators/{code}/values",
                    params={"since": period.isoformat(), "until": NOW.isoformat(),
                            "dimension": dimension})
    at = {datetime.fromisoformat(p["period_start"]): p["value"] for p in series["points"]}
    return at.get(period.astimezone(UTC))


def test_event_indicators_match_independent_counts(api: Api) -> None:
    rows = []
    for i in range(12):
        disposed = DAY + timedelta(days=1, hours=i)
        rows.append({"channel": ("hotline", "citizen", "inspector")[i % 3],
                     "reported_at": DAY + timedelta(hours=i), "state": "feedback",
                     "department_id": api.dept, "disposed_at": disposed,
                     "disposed_on_time": i % 4 != 0, "rework_count": int(i % 6 == 0)})
    _events(api, rows)
    assert _compute(api, "CG.01.001", DAY)["failed"] == []
    assert _value(api, "CG.01.001", DAY) == 12
    citizen = sum(r["channel"] in ("hotline", "citizen") and r["reported_at"] < DAY
                  + timedelta(days=1) for r in rows)
    _compute(api, "CG.01.002", DAY)
    assert _value(api, "CG.01.002", DAY) == citizen
    _compute(api, "CG.02.001", DAY)  # weekly: disposed that week, by department
    on_time = 100.0 * sum(r["disposed_on_time"] for r in rows) / len(rows)
    assert _value(api, "CG.02.001", DAY, api.dept) == pytest.approx(on_time)
    _compute(api, "CG.02.004", DAY)
    assert _value(api, "CG.02.004", DAY, api.dept) == pytest.approx(100.0 * 2 / 12)
    light = api.ok("ind-viewer", "GET", "/v1/indicators/CG.02.001/breakdown",
                   params={"period_start": DAY.isoformat()})
    assert {"dimension": api.dept, "value": pytest.approx(75.0), "light": "red"} in light


def test_industrial_growth_is_on_the_same_firms(api: Api) -> None:
    a, b, c = (unique("91340621") for _ in range(3))
    month, last = datetime(2032, 3, 1), datetime(2031, 3, 1)
    with psycopg.connect(api.url) as conn:
        batch = conn.execute("INSERT INTO import_batches (filename, rows_total, rows_loaded,"
                             " imported_by) VALUES ('t', 5, 5, 't') RETURNING id").fetchone()[0]
        for code, town in ((a, "城关"), (b, "城关"), (c, "韩村")):
            conn.execute("INSERT INTO enterprises (code, name, industry, town, size, ownership)"
                         " VALUES (%s, %s, '15 酒、饮料和精制茶制造业', %s, 'small', '私营')",
                         (code, code, town))
        for code, when, va in ((a, month, 120), (b, month, 80), (c, month, 500),
                               (a, last, 100), (b, last, 100)):
            conn.execute("INSERT INTO enterprise_indicators (enterprise_code, month, revenue,"
                         " value_added, profit, tax, electricity_kwh, batch_id) VALUES"
                         " (%s, %s, 1000, %s, 10, 5, 1000, %s)", (code, when, va, batch))
    start = month.replace(tzinfo=COUNTY_TZ)
    _compute(api, "JJ.01.001", start)
    # 同口径: c entered the set this year and is left out; (120 + 80) / (100 + 100) - 1 = 0 %
    assert _value(api, "JJ.01.001", start) == pytest.approx(0.0)


def test_bad_definitions_are_refused_naming_the_fault(api: Api) -> None:
    good = api.ok("ind-viewer", "GET", "/v1/indicators/CG.02.001")
    body = {k: good[k] for k in good if k not in ("version", "updated_by", "updated_at")}
    cases = [({"warning": 70, "alarm": 90}, "wrong direction"),
             ({"excellence": 120}, "outside the range of unit %"),
             ({"query": "SELECT count(*) FROM users WHERE :start < :end"}, "not users"),
             ({"query": "SELECT count(*) FROM metrics.events"}, ":start and :end missing")]
    for change, words in cases:
        res = api.call("ind-admin", "PUT", "/v1/indicators/CG.02.001", json={**body, **change})
        assert res.status_code == 422 and words in res.text, (change, res.text)
    assert api.call("ind-viewer", "PUT", "/v1/indicators/CG.02.001", json=body
                    ).status_code == 403


def _define(api: Api, code: str, query: str, **over) -> None:
    body = {"code": code, "name": "测试指标", "class_code": "CG.01", "definition": "测试",
            "query": query, "unit": "件", "frequency": "daily", "direction": "down", **over}
    api.ok("ind-admin", "PUT", f"/v1/indicators/{code}", json=body)


def test_a_failing_query_marks_the_period_failed_not_zero(api: Api) -> None:
    _define(api, "CG.01.901", "SELECT 1 / (count(*) - count(*)) FROM metrics.events"
            " WHERE reported_at >= :start AND reported_at < :end")
    done = _compute(api, "CG.01.901", DAY)
    assert done["failed"] and "division by zero" in done["failed"][0]["error"]
    series = api.ok("ind-viewer", "GET", "/v1/indicators/CG.01.901/values",
                    params={"since": DAY.isoformat(), "until": NOW.isoformat()})
    assert series["points"] == [] and series["failed"][0]["error"]
    row = next(r for r in api.ok("ind-viewer", "GET", "/v1/indicators")
               if r["code"] == "CG.01.901")
    assert row["value"] is None and row["last_status"] == "failed"


def test_red_raises_an_alarm_that_opens_an_event_and_green_clears_it(api: Api) -> None:
    category = f"{api.tag}.E"
    query = ("SELECT count(*) FROM metrics.events WHERE category_code = '" + category
             + "' AND reported_at >= :start AND reported_at < :end")
    _define(api, "CG.01.902", query, warning=2, alarm=4, open_event_category=category)
    yesterday = (NOW - timedelta(days=1)).replace(hour=0)
    _events(api, [{"channel": "hotline", "category_code": category,
                   "reported_at": yesterday + timedelta(hours=i)} for i in range(5)])
    _compute(api, "CG.01.902", yesterday)
    alarms = [a for a in api.ok("ind-op", "GET", "/v1/indicator-alarms")
              if a["indicator_code"] == "CG.01.902"]
    assert len(alarms) == 1 and alarms[0]["severity"] == "major" and alarms[0]["value"] == 5
    event = api.ok("ind-op", "GET", f"/v1/events/{alarms[0]['event_id']}")
    assert event["category_code"] == category and event["channel"] == "system"
    with psycopg.connect(api.url) as conn:
        conn.execute("UPDATE events SET category_code = 'E01.02' WHERE category_code = %s"
                     " AND channel = 'hotline'", (category,))
    _compute(api, "CG.01.902", yesterday)
    cleared = api.ok("ind-op", "GET", "/v1/indicator-alarms", params={"state": "cleared"})
    assert any(a["id"] == alarms[0]["id"] and a["cleared_by"] == "system" for a in cleared)


def test_the_hub_lists_indicators_and_data_apis(api: Api) -> None:
    hub = api.ok("ind-viewer", "GET", "/v1/hub")
    kinds = {(e["kind"], e["id"]) for e in hub}
    assert ("indicator", "CG.02.001") in kinds and ("api", "GET /v1/indicators") in kinds
    assert len([e for e in hub if e["kind"] == "indicator"]) >= 40


def test_the_cockpit_shows_the_classes_and_what_needs_a_decision(api: Api) -> None:
    seen = api.ok("ind-viewer", "GET", "/v1/cockpit")
    classes = {c["code"]: c for c in seen["classes"]}
    assert {"CS", "CG", "SJ", "JJ"} <= set(classes)
    # 按期处置率 of the seeded week was 75 %, under its alarm threshold of 80 %
    assert "CG.02.001" in [r["code"] for r in seen["red_indicators"]]
    assert classes["CG"]["state"] == "red" and classes["CG"]["red"] >= 1
    assert "CG.01.901" in [r["code"] for r in seen["failed_indicators"]]
