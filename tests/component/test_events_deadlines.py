"""Deadlines across a weekend and the 2026 National Day week, the traffic light, supervision
raised on red, and the department evaluation rates on a known set of events."""

from datetime import timedelta

import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 20, 16, 30)) as api:
        api.a = api.department(unique("dl-a"))
        api.b = api.department(unique("dl-b"))
        api.person("dl-disp", Role.DISPATCHER)
        api.person("dl-disp2", Role.DISPATCHER)
        api.person("dl-viewer", Role.VIEWER)
        api.person("dl-staff-a", Role.DEPARTMENT_STAFF, api.a)
        api.person("dl-staff-b", Role.DEPARTMENT_STAFF, api.b)
        yield api


def dispatch(api: Api, dept: str, category: str = "E01.02", accept: bool = True) -> int:
    body = {"channel": "inspector", "category_code": category, "description": "巡查发现"}
    event = api.ok("dl-disp", "POST", "/v1/events", 201, json=body)["id"]
    api.ok("dl-disp", "POST", f"/v1/events/{event}/register")
    api.ok("dl-disp", "POST", f"/v1/events/{event}/dispatch", json={"department_id": dept})
    if accept:
        staff = "dl-staff-a" if dept == api.a else "dl-staff-b"
        api.ok(staff, "POST", f"/v1/events/{event}/accept")
    return event


def clock_of(api: Api, event: int) -> dict:
    return api.ok("dl-viewer", "GET", f"/v1/events/{event}")["clock"]


def test_deadlines_across_a_weekend(api: Api) -> None:
    api.clock.now = cst(2026, 11, 20, 16, 30)  # Friday afternoon
    event = dispatch(api, api.a)  # 暴露垃圾: 4 working hours to dispose
    seen = clock_of(api, event)
    assert seen["step"] == "dispose"
    assert seen["step_deadline_at"] == "2026-11-23T03:30:00Z"  # Monday 11:30 in the county
    assert seen["total_deadline_at"] == "2026-11-27T08:30:00Z"  # 5 working days: Fri 16:30


def test_deadlines_across_national_day_and_an_adjusted_saturday(api: Api) -> None:
    api.clock.now = cst(2026, 9, 30, 10, 0)  # the day before the holiday week
    event = dispatch(api, api.a, category="E06.99")  # the default 3 working days
    seen = clock_of(api, event)
    assert seen["step_deadline_at"] == "2026-10-10T02:00:00Z"  # Saturday 10 Oct, a workday
    assert seen["total_deadline_at"] == "2026-10-13T02:00:00Z"  # Tuesday, Sunday is off
    api.clock.now = cst(2026, 10, 7, 17, 0)  # a week later, all of it holiday
    assert clock_of(api, event)["step_light"] == "green"


def test_traffic_light_and_supervision_on_red(api: Api) -> None:
    api.clock.now = cst(2026, 11, 23, 9, 0)
    event = dispatch(api, api.a)  # dispose by 14:30 (4 working hours with lunch)
    for hour, minute, light in ((11, 0, "green"), (13, 45, "yellow"), (14, 30, "yellow"),
                                (15, 0, "red")):
        api.clock.now = cst(2026, 11, 23, hour, minute)
        assert clock_of(api, event)["step_light"] == light, f"{hour}:{minute:02d}"
    assert api.post("dl-viewer", "/v1/events/sweep").status_code == 403
    swept = api.ok("dl-disp", "POST", "/v1/events/sweep")["supervised"]
    assert event in swept
    detail = api.ok("dl-viewer", "GET", f"/v1/events/{event}")
    assert detail["supervised"] is True
    assert detail["transitions"][-1]["action"] == "supervise"
    assert detail["transitions"][-1]["actor"] == "system"
    assert event not in api.ok("dl-disp", "POST", "/v1/events/sweep")["supervised"]


# --- evaluation on a known set ---------------------------------------------------------
# (department, outcome) per event, dispatched on 1-3 Dec 2026; outcomes:
#   closed: disposed and closed in time; late_dispose: disposed after the 4 h limit, closed in
#   time; late_close: closed after the 5-day limit; rework: one failed check, then closed;
#   open: still being handled; returned: sent back by the first department, then handled by A
CASES = [("a", "closed"), ("a", "closed"), ("a", "late_dispose"), ("a", "late_close"),
         ("a", "rework"), ("a", "open"), ("b", "returned"), ("b", "closed")]


def _finish(api: Api, event: int, staff: str, outcome: str) -> None:
    start = api.clock.now
    if outcome == "late_dispose":
        api.clock.now = start + timedelta(days=1)
    api.ok(staff, "POST", f"/v1/events/{event}/feedback")
    api.ok("dl-disp", "POST", f"/v1/events/{event}/check")
    if outcome == "rework":
        api.ok("dl-disp", "POST", f"/v1/events/{event}/rework")
        api.ok(staff, "POST", f"/v1/events/{event}/feedback")
        api.ok("dl-disp", "POST", f"/v1/events/{event}/check")
    if outcome == "late_close":
        api.clock.now = start + timedelta(days=10)
    api.ok("dl-disp", "POST", f"/v1/events/{event}/close")
    api.clock.now = start


def _play(api: Api, dept: str, outcome: str) -> None:
    event = dispatch(api, dept)
    if outcome == "open":
        return
    if outcome == "returned":
        req = api.ok("dl-staff-b", "POST", f"/v1/events/{event}/requests", 201,
                     json={"kind": "return", "note": "非本部门职责"})["id"]
        api.ok("dl-disp2", "POST", f"/v1/events/{event}/requests/{req}/approve")
        api.ok("dl-disp", "POST", f"/v1/events/{event}/dispatch", json={"department_id": api.a})
        api.ok("dl-staff-a", "POST", f"/v1/events/{event}/accept")
        dept = api.a
    _finish(api, event, "dl-staff-a" if dept == api.a else "dl-staff-b", "closed"
            if outcome == "returned" else outcome)


def _expected(dept: str) -> dict:
    """The counts, worked out from CASES alone."""
    own = [o for d, o in CASES if d == dept]
    handled = [o for d, o in CASES if d == dept and o != "returned"]
    if dept == "a":  # the returned event ended with A
        handled += ["closed" for d, o in CASES if o == "returned"]
    dispatched = len(own) + (sum(o == "returned" for _, o in CASES) if dept == "a" else 0)
    return {
        "dispatched": dispatched,
        "accurate_dispatches": dispatched - sum(o == "returned" for o in own),
        "due": len(handled),
        "disposed": sum(o != "open" for o in handled),
        "disposed_on_time": sum(o not in ("open", "late_dispose") for o in handled),
        "closed": sum(o != "open" for o in handled),
        "closed_on_time": sum(o not in ("open", "late_close") for o in handled),
        "reworked": sum(o == "rework" for o in handled),
    }


def test_evaluation_rates_on_a_known_set(api: Api) -> None:
    for i, (dept, outcome) in enumerate(CASES):
        api.clock.now = cst(2026, 12, 1 + i % 3, 9, 0)
        _play(api, api.a if dept == "a" else api.b, outcome)
    api.clock.now = cst(2026, 11, 30, 9, 0)
    dispatch(api, api.a)  # dispatched before the period: not counted
    api.clock.now = cst(2026, 12, 20, 9, 0)
    rows = api.ok("dl-viewer", "GET", "/v1/events/evaluation",
                  params={"start": "2026-12-01T00:00:00+08:00",
                          "end": "2026-12-04T00:00:00+08:00"})
    by_dept = {r["department_id"]: r for r in rows}
    for key, dept in (("a", api.a), ("b", api.b)):
        want = _expected(key)
        got = by_dept[dept]
        assert {k: got[k] for k in want} == want, key
        due = want["due"]
        for rate, part in (("closure_rate", "closed"), ("on_time_closure_rate", "closed_on_time"),
                           ("disposal_rate", "disposed"), ("rework_rate", "reworked"),
                           ("on_time_disposal_rate", "disposed_on_time")):
            assert got[rate] == (round(want[part] / due, 4) if due else None), (key, rate)
        assert got["accurate_dispatch_rate"] == round(
            want["accurate_dispatches"] / want["dispatched"], 4)
    # spelled out once: A handled 7 (its 6 and the one B returned), closed 6, one of them late
    assert by_dept[api.a]["closure_rate"] == 0.8571
    assert by_dept[api.a]["on_time_closure_rate"] == 0.7143
    assert by_dept[api.b]["accurate_dispatch_rate"] == 0.5
    csv = api.get("dl-viewer", "/v1/events/evaluation",
                  params={"start": "2026-12-01T00:00:00+08:00",
                          "end": "2026-12-04T00:00:00+08:00", "format": "csv"})
    assert api.a in csv.text and "on_time_closure_rate" in csv.text.splitlines()[0]
