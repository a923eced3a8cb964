"""城市综合管理服务评价 through the API on real PostgreSQL: a town's scores against its own
past computed here independently from the seeded events; hand-entered scores audited; no
ranking unless the framework's method allows it; GB/T 30428.4 rates per town and grid. The
module's own framework, categories, places and far-future months keep it apart from other
tests' events in the session database."""

from datetime import timedelta

import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

MONTH = cst(2033, 6, 1, 0, 0)  # the month evaluated: June 2033 (county time)
PAST = [cst(2033, m, 10, 9, 0) for m in (2, 3, 4, 5)]  # Feb..May
COUNTS = {"A": [0, 2, 4, 3], "B": [0, 0, 0, 0]}  # past monthly events per town, Feb..May


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, MONTH + timedelta(days=40)) as api:
        api.tag = unique("e17").replace("-", "").upper()[:9]
        api.fw = api.tag.lower()
        api.dept = api.department(unique("cgj"), "城管局")
        with psycopg.connect(api.url) as conn:
            conn.execute("INSERT INTO event_categories (code, kind, major, minor) VALUES"
                         " (%s, 'incident', '测试', '占道'), (%s, 'incident', '测试', '其他')",
                         (f"{api.tag}.O", f"{api.tag}.X"))
            conn.execute("INSERT INTO evaluation_frameworks (code, name, history_periods)"
                         " VALUES (%s, '测试评价', 3)", (api.fw,))
            conn.execute("INSERT INTO evaluation_items (framework_code, code, level1, name,"
                         " weight, source, rate_weight) VALUES"
                         " (%s, 'order', '城市管理保底线', '有序', 60, 'events', 0.6),"
                         " (%s, 'satisfaction', '群众满意度', '满意度', 40, 'manual', 0.6)",
                         (api.fw, api.fw))
            conn.execute("INSERT INTO evaluation_item_categories VALUES (%s, 'order', %s)",
                         (api.fw, f"{api.tag}.O"))
        api.person("ev-disp", Role.DISPATCHER)
        api.person("ev-viewer", Role.VIEWER)
        api.person("ev-staff", Role.DEPARTMENT_STAFF, api.dept)
        _seed(api)
        yield api


def _town(api: Api, key: str) -> str:
    return f"T{api.tag}{key}"


def _seed(api: Api) -> None:
    """Past months: open events. June: town A 6 of its category (3 closed on time, 1 late,
    2 open), one cancelled and one of an unmapped category (neither counts); town B 1 on time."""
    rows = [(key, at, "reported", None, "O") for key, counts in COUNTS.items()
            for at, n in zip(PAST, counts, strict=True) for _ in range(n)]
    june = MONTH + timedelta(days=3)
    rows += [("A", june, "closed", True, "O")] * 3 + [("A", june, "closed", False, "O")]
    rows += [("A", june, "reported", None, "O")] * 2 + [("A", june, "cancelled", None, "O")]
    rows += [("A", june, "closed", True, "X"), ("B", june, "closed", True, "O")]
    with psycopg.connect(api.url) as conn, conn.cursor() as cur:
        for key, at, state, on_time, cat in rows:
            cur.execute(
                "INSERT INTO events (channel, reporter, category_code, urgency, description,"
                " grid, reported_at, state, closed_at, closed_on_time) VALUES ('hotline',"
                " 'seed', %s, 'normal', 'seeded', %s, %s, %s, %s, %s) RETURNING id",
                (f"{api.tag}.{cat}", f"G{_town(api, key)}", at, state,
                 at + timedelta(hours=5) if state == "closed" else None, on_time))
            # town_code is the trigger's answer from a point; these events have none
            cur.execute("UPDATE events SET town_code = %s WHERE id = %s",
                        (_town(api, key), cur.fetchone()[0]))


def _expected_order(n: int, on_time: int, past: list[int]) -> float:
    volume = 100 * min(1.0, (sum(past) / 3 + 1) / (n + 1))
    return volume if n == 0 else 100 * 0.6 * on_time / n + 0.4 * volume


def test_a_town_is_scored_against_its_own_past(api: Api) -> None:
    for kind, score in (("field", 80), ("survey", 90)):
        body = {"item": "satisfaction", "period": "2033-06-15", "area": _town(api, "A"),
                "kind": kind, "score": score}
        got = api.ok("ev-disp", "PUT", f"/v1/evaluation/{api.fw}/manual-scores", json=body)
        assert got["period"] == "2033-06-01" and got["entered_by"] == "ev-disp"
    res = api.call("ev-viewer", "PUT", f"/v1/evaluation/{api.fw}/manual-scores", json=body)
    assert res.status_code == 403
    bad = api.call("ev-disp", "PUT", f"/v1/evaluation/{api.fw}/manual-scores",
                   json={**body, "item": "nope"})
    assert bad.status_code == 404 and "nope" in bad.json()["detail"]
    with psycopg.connect(api.url) as conn:
        audited = conn.execute(
            "SELECT count(*) FROM audit_log WHERE actor = 'ev-disp'"
            " AND target = %s", (f"evaluation {api.fw} satisfaction",)).fetchone()[0]
    assert audited == 2

    out = api.ok("ev-viewer", "GET", f"/v1/evaluation/{api.fw}/scores",
                 params={"by": "town", "area": _town(api, "A"), "period": "2033-06-20",
                         "periods": 2})
    may, june = out["periods"]
    order = {i["code"]: i for i in june["items"]}["order"]
    assert (order["events"], order["closed_on_time"], order["baseline"]) == (6, 3, 3.0)
    june_order = _expected_order(6, 3, COUNTS["A"][1:])  # Mar..May
    assert order["score"] == pytest.approx(june_order, abs=0.01)
    assert june["total"] == pytest.approx((60 * june_order + 40 * 85) / 100, abs=0.01)
    may_order = _expected_order(3, 0, COUNTS["A"][:3])  # Feb..Apr
    assert may["total"] == pytest.approx(may_order, abs=0.01) and may["coverage"] == 0.6
    assert june["change"] == pytest.approx(june["total"] - may["total"], abs=0.011)
    assert api.get("ev-staff", f"/v1/evaluation/{api.fw}/scores").status_code == 403
    old = api.get("ev-viewer", f"/v1/evaluation/{api.fw}/scores", params={"period": "0001-01-01"})
    assert old.status_code == 422 and "2000..2100" in old.json()["detail"]


def test_places_are_not_ranked_unless_the_method_allows(api: Api) -> None:
    params = {"by": "town", "period": "2033-06-01"}
    rows = api.ok("ev-viewer", "GET", f"/v1/evaluation/{api.fw}/places", params=params)
    mine = [r for r in rows if r["area"].startswith(f"T{api.tag}")]
    assert [r["area"] for r in mine] == [_town(api, "A"), _town(api, "B")]
    assert mine[1]["total"] == pytest.approx(_expected_order(1, 1, [0, 0, 0]), abs=0.01)
    for fw in ("mohurd", api.fw):
        res = api.get("ev-viewer", f"/v1/evaluation/{fw}/places",
                      params={**params, "rank": "true"})
        assert res.status_code == 422 and "纵向对比" in res.json()["detail"]
    with psycopg.connect(api.url) as conn:
        conn.execute("UPDATE evaluation_frameworks SET ranking_allowed = true WHERE code = %s",
                     (api.fw,))
    ranked = api.ok("ev-viewer", "GET", f"/v1/evaluation/{api.fw}/places",
                    params={**params, "rank": "true"})
    mine = [r["area"] for r in ranked if r["area"].startswith(f"T{api.tag}")]
    assert mine == [_town(api, "B"), _town(api, "A")]
    framework = api.ok("ev-viewer", "GET", "/v1/evaluation/mohurd")
    assert [i["name"] for i in framework["items"]] == ["干净", "有序", "安全", "满意度", "整洁"]
    assert not framework["ranking_allowed"] and "E04.01" in {
        c for i in framework["items"] for c in i["categories"]}


def test_gbt_rates_per_town_and_grid(api: Api) -> None:
    """Events dispatched in a window of their own: town A's 2 on time of 3 due, one returned
    by another department; town B's one due, not closed."""
    start = cst(2034, 1, 5, 9, 0)
    plan = [("A", "closed", True, False), ("A", "closed", False, False),
            ("A", "dispatched", None, True), ("B", "dispatched", None, False)]
    with psycopg.connect(api.url) as conn, conn.cursor() as cur:
        for key, state, on_time, returned in plan:
            cur.execute(
                "INSERT INTO events (channel, reporter, category_code, urgency, description,"
                " grid, reported_at, state, department_id, closed_at, closed_on_time)"
                " VALUES ('hotline', 'seed', %s, 'normal', 'seeded', %s, %s, %s, %s, %s, %s)"
                " RETURNING id", (f"{api.tag}.X", f"R{_town(api, key)}", start, state,
                                  api.dept, start if state == "closed" else None, on_time))
            event = cur.fetchone()[0]
            cur.execute("UPDATE events SET town_code = %s WHERE id = %s",
                        (_town(api, key), event))
            for dept in (["cgj-other"] if returned else []) + [api.dept]:
                cur.execute("INSERT INTO event_transitions (event_id, action, to_state, actor,"
                            " actor_role, at, department_id) VALUES (%s, 'dispatch',"
                            " 'dispatched', 'seed', 'dispatcher', %s, %s)", (event, start, dept))
            if returned:
                cur.execute("INSERT INTO event_transitions (event_id, action, to_state, actor,"
                            " actor_role, at, department_id) VALUES (%s, 'return',"
                            " 'verified', 'seed', 'department_staff', %s, 'cgj-other')",
                            (event, start))
    window = {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}
    towns = {r["area"]: r for r in api.ok("ev-viewer", "GET", "/v1/evaluation-rates",
                                          params={"by": "town", **window})}
    a, b = towns[_town(api, "A")], towns[_town(api, "B")]
    assert (a["dispatched"], a["accurate_dispatches"], a["due"]) == (4, 3, 3)
    assert (a["closed"], a["closed_on_time"]) == (2, 1)
    assert a["on_time_closure_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert (b["due"], b["closed"], b["closure_rate"]) == (1, 0, 0.0)
    grids = {r["area"] for r in api.ok("ev-viewer", "GET", "/v1/evaluation-rates",
                                       params={"by": "grid", **window})}
    assert {f"R{_town(api, 'A')}", f"R{_town(api, 'B')}"} <= grids
    bad = api.get("ev-viewer", "/v1/evaluation-rates",
                  params={"by": "town", "start": window["end"], "end": window["start"]})
    assert bad.status_code == 422 and "not before" in bad.json()["detail"]
