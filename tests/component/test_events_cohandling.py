"""Co-handling (跨部门协同处置) and 催办 through the API on the real database: a lead and
co-handling departments, each working its own task; the event closes only when every
co-handling task is done or released; lights, reminders with escalation, the sweep, the
notifications they make, and the per-department evaluation (in-process API, fixed clock)."""

import asyncio
from datetime import timedelta

import psycopg
import pytest

from cityevents.calendar import WorkCalendar
from cityops.principal import Role
from notifications.sources import collect
from tests.component.test_events_kit import Api, api_client, cst, unique

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:  # a Monday
        api.lead = api.department(unique("co-cgj"), "城管局")
        api.co1 = api.department(unique("co-slj"), "水利局")
        api.co2 = api.department(unique("co-jtj"), "交通局")
        api.other = api.department(unique("co-hbj"), "环保局")
        api.person("co-disp", Role.DISPATCHER)
        api.person("co-disp2", Role.DISPATCHER)
        api.person("co-lead", Role.DEPARTMENT_STAFF, api.lead)
        api.person("co-staff1", Role.DEPARTMENT_STAFF, api.co1)
        api.person("co-staff2", Role.DEPARTMENT_STAFF, api.co2)
        api.person("co-outsider", Role.DEPARTMENT_STAFF, api.other)
        api.person("co-viewer", Role.VIEWER)
        yield api


def dispatched(api: Api, category: str = "E05.01") -> int:
    event = api.ok("co-disp", "POST", "/v1/events", 201, json={
        "channel": "hotline", "category_code": category, "description": "路面积水，井盖缺失"})["id"]
    api.ok("co-disp", "POST", f"/v1/events/{event}/register")
    api.ok("co-disp", "POST", f"/v1/events/{event}/dispatch", json={"department_id": api.lead})
    return event


def add(api: Api, event: int, dept: str, status: int = 201, **body) -> dict:
    return api.ok("co-disp", "POST", f"/v1/events/{event}/tasks", status,
                  json={"department_id": dept, **body})


def tasks(api: Api, event: int) -> dict:
    return api.ok("co-viewer", "GET", f"/v1/events/{event}/tasks")


def test_co_handlers_work_their_own_tasks_and_hold_the_closure(api: Api) -> None:
    event = dispatched(api)
    t1 = add(api, event, api.co1, instructions="排查管网")["id"]
    t2 = add(api, event, api.co2, amount=2, unit="work_hours")["id"]
    base = f"/v1/events/{event}/tasks"
    # each department works only its own task; an outsider uploads nothing to the event
    assert api.post("co-staff1", f"{base}/{t2}/accept").status_code == 403
    assert api.post("co-outsider", f"/v1/events/{event}/attachments",
                    files={"file": ("x.png", PNG, "image/png")}).status_code == 403
    api.ok("co-staff1", "POST", f"{base}/{t1}/accept")
    photo = api.ok("co-staff1", "POST", f"/v1/events/{event}/attachments", 201,
                   files={"file": ("after.png", PNG, "image/png")})["id"]
    api.clock.now += timedelta(hours=1)
    api.ok("co-staff1", "POST", f"{base}/{t1}/feedback",
           json={"note": "已疏通管网", "attachment_ids": [photo]})
    # the lead sends it back, then accepts the second answer
    assert api.post("co-lead", f"{base}/{t1}/evaluate",
                    json={"rating": "unsatisfied"}).status_code == 422
    back = api.ok("co-lead", "POST", f"{base}/{t1}/evaluate",
                  json={"rating": "unsatisfied", "note": "仍有积水"})
    assert back["tasks"][1]["state"] == "processing" and back["tasks"][1]["rework_count"] == 1
    api.ok("co-staff1", "POST", f"{base}/{t1}/feedback", json={"note": "积水已排净"})
    assert api.post("co-staff2", f"{base}/{t1}/evaluate",
                    json={"rating": "satisfied"}).status_code == 403
    api.ok("co-lead", "POST", f"{base}/{t1}/evaluate", json={"rating": "satisfied"})
    # the lead's own workflow; the event cannot close while t2 is open
    api.ok("co-lead", "POST", f"/v1/events/{event}/accept")
    api.ok("co-lead", "POST", f"/v1/events/{event}/feedback", json={"note": "井盖已补"})
    api.ok("co-disp", "POST", f"/v1/events/{event}/check")
    refused = api.post("co-disp", f"/v1/events/{event}/close")
    assert refused.status_code == 409 and str(t2) in refused.json()["detail"]
    assert api.post("co-disp", f"{base}/{t2}/release", json={"note": ""}).status_code == 422
    api.ok("co-disp", "POST", f"{base}/{t2}/release", json={"note": "非交通局职责"})
    assert api.ok("co-disp", "POST", f"/v1/events/{event}/close")["state"] == "closed"

    seen = tasks(api, event)["tasks"]
    assert [(t["role"], t["department_id"], t["state"]) for t in seen] == [
        ("lead", api.lead, "done"), ("co", api.co1, "done"), ("co", api.co2, "released")]
    assert seen[1]["feedback"] == "积水已排净" and seen[1]["rating"] == "satisfied"
    assert seen[0]["feedback"] == "井盖已补"
    # a department finds the events it leads or co-handles (a released one: no longer)
    for dept, expected in ((api.co1, True), (api.lead, True), (api.co2, False)):
        listed = api.ok("co-viewer", "GET", "/v1/events", params={"task_department_id": dept})
        assert (event in [e["id"] for e in listed]) is expected, dept
    timeline = api.ok("co-viewer", "GET", f"/v1/events/{event}")["transitions"]
    co_steps = [(t["action"], t["department_id"]) for t in timeline
                if t["action"].startswith("cohandler_")]
    assert co_steps[:3] == [("cohandler_add", api.co1), ("cohandler_add", api.co2),
                            ("cohandler_accept", api.co1)]
    first_feedback = next(t for t in timeline if t["action"] == "cohandler_feedback")
    assert first_feedback["attachment_ids"] == [photo] and first_feedback["on_time"] is True
    with psycopg.connect(api.url) as conn:
        audited = conn.execute("SELECT count(*) FROM audit_log WHERE target LIKE %s"
                               " AND outcome = 'ok'", (f"/v1/events/{event}/tasks%",)).fetchone()
    assert audited[0] >= 8  # every change through the API is in the audit log


def test_bad_co_handling_requests_say_what_is_wrong(api: Api) -> None:
    event = api.ok("co-disp", "POST", "/v1/events", 201, json={
        "channel": "hotline", "category_code": "E05.01", "description": "积水"})["id"]
    early = api.post("co-disp", f"/v1/events/{event}/tasks", json={"department_id": api.co1})
    assert early.status_code == 409 and "dispatched" in early.json()["detail"]
    event = dispatched(api)
    res = api.post("co-disp", f"/v1/events/{event}/tasks", json={"department_id": api.lead})
    assert res.status_code == 422 and "lead department" in res.json()["detail"]
    res = api.post("co-disp", f"/v1/events/{event}/tasks", json={"department_id": "nowhere"})
    assert res.status_code == 422 and "not registered" in res.json()["detail"]
    res = api.post("co-disp", f"/v1/events/{event}/tasks",
                   json={"department_id": api.co1, "amount": 3})
    assert res.status_code == 422 and res.json()["detail"].startswith("amount, unit")
    assert api.post("co-lead", f"/v1/events/{event}/tasks",
                    json={"department_id": api.co1}).status_code == 403
    add(api, event, api.co1)
    again = api.post("co-disp", f"/v1/events/{event}/tasks", json={"department_id": api.co1})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    assert api.post("co-disp", f"/v1/events/{event}/reminders",
                    json={"task_id": 999999999}).status_code == 422
    # sent back (回退), the event cannot be given to one of its co-handlers as the lead
    asked = api.ok("co-lead", "POST", f"/v1/events/{event}/requests", 201,
                   json={"kind": "return", "note": "主要属水利局职责"})["id"]
    api.ok("co-disp", "POST", f"/v1/events/{event}/requests/{asked}/approve")
    res = api.post("co-disp", f"/v1/events/{event}/dispatch", json={"department_id": api.co1})
    assert res.status_code == 409 and "release that task" in res.json()["detail"]


def test_lights_reminders_escalation_and_the_sweep(api: Api) -> None:
    start = api.clock.now = cst(2026, 11, 17, 9, 0)
    event = dispatched(api)
    task = add(api, event, api.co2, amount=2, unit="work_hours")["id"]
    api.clock.now = start + timedelta(minutes=100)  # 1 h 40 of 2 working hours: yellow
    seen = tasks(api, event)
    assert seen["tasks"][1]["light"] == "yellow" and seen["tasks"][0]["light"] == "green"
    assert seen["light"] == "yellow"  # the event shows its worst task
    assert api.ok("co-viewer", "GET", f"/v1/events/{event}")["clock"]["tasks_light"] == "yellow"
    first = api.ok("co-disp", "POST", f"/v1/events/{event}/reminders", 201,
                   json={"task_id": task, "note": "请加快处置"})
    assert (first["number"], first["escalated"], first["department_id"]) == (1, False, api.co2)
    second = api.ok("co-disp2", "POST", f"/v1/events/{event}/reminders", 201,
                    json={"task_id": task})
    assert second["number"] == 2 and second["escalated"] is True  # the 2nd: to the leader
    lead = api.ok("co-disp", "POST", f"/v1/events/{event}/reminders", 201, json={})
    assert lead["task_id"] is None and lead["department_id"] == api.lead
    # past the deadline: the sweep reminds (escalated) and supervises, once
    api.clock.now = start + timedelta(hours=3)
    swept = api.ok("co-disp", "POST", "/v1/events/sweep")
    assert event in swept["supervised"] and len(swept["reminded"]) >= 1
    again = api.ok("co-disp", "POST", "/v1/events/sweep")
    assert event not in again["supervised"]
    reminders = tasks(api, event)["reminders"]
    overdue = [r for r in reminders if r["reason"] == "overdue" and r["task_id"] == task]
    assert len(overdue) == 1 and overdue[0]["escalated"] and overdue[0]["actor"] == "system"
    assert tasks(api, event)["tasks"][1]["light"] == "red"
    actions = [t["action"] for t in api.ok("co-viewer", "GET", f"/v1/events/{event}")
               ["transitions"]]
    assert actions.count("remind") == len(reminders) and "supervise" in actions
    # the notification worker's sources turn them into notifications for the departments
    kinds = asyncio.run(_notifications(api, event))
    assert ("event_reminder", api.co2) in kinds and ("event_escalated", api.co2) in kinds
    assert ("event_reminder", api.lead) in kinds and ("event_escalated", api.lead) not in kinds
    # the co-handler was told of its task as the lead of the dispatch
    assert {("event_dispatched", api.co2), ("event_dispatched", api.lead)} <= kinds


async def _notifications(api: Api, event: int) -> set[tuple[str, str]]:
    async with await psycopg.AsyncConnection.connect(api.url, autocommit=True) as conn:
        await collect(conn, WorkCalendar(), api.clock.now, timedelta(minutes=15),
                      lookback=timedelta(days=400))
        cur = await conn.execute(
            "SELECT n.kind, n.department_id FROM notifications n JOIN event_reminders r"
            " ON r.id::text = n.ref WHERE r.event_id = %s"
            " AND n.kind IN ('event_reminder', 'event_escalated')"
            " UNION SELECT n.kind, n.department_id FROM notifications n JOIN event_transitions t"
            " ON t.id::text = n.ref WHERE t.event_id = %s AND n.kind = 'event_dispatched'",
            (event, event))
        return set(await cur.fetchall())


def test_evaluation_counts_co_handling_tasks_per_department(api: Api) -> None:
    start = api.clock.now = cst(2026, 11, 18, 9, 0)
    event = dispatched(api)
    ontime = add(api, event, api.other)["id"]
    late = add(api, event, api.co1, amount=1, unit="work_hours")["id"]
    for who, task in (("co-outsider", ontime), ("co-staff1", late)):
        api.ok(who, "POST", f"/v1/events/{event}/tasks/{task}/accept")
    api.ok("co-outsider", "POST", f"/v1/events/{event}/tasks/{ontime}/feedback",
           json={"note": "已检测水质"})
    api.clock.now = start + timedelta(hours=3)
    api.ok("co-staff1", "POST", f"/v1/events/{event}/tasks/{late}/feedback",
           json={"note": "已排水"})
    rows = api.ok("co-disp", "GET", "/v1/events/evaluation", params={
        "start": start.isoformat(), "end": (start + timedelta(hours=4)).isoformat()})
    by = {r["department_id"]: r for r in rows}
    assert by[api.other]["co_due"] == 1 and by[api.other]["co_on_time_disposal_rate"] == 1.0
    assert by[api.other]["dispatched"] == 0  # a co-handler only: no lead counts
    assert by[api.co1]["co_disposed"] == 1 and by[api.co1]["co_disposed_on_time"] == 0
    assert by[api.co1]["co_on_time_disposal_rate"] == 0.0
    lead = by[api.lead]
    assert lead["co_due"] == 0 and lead["due"] == 1
    assert lead["all_on_time_disposal_rate"] == 0.0  # disposed nothing yet, on time or not


def test_suspension_stops_the_co_handlers_clocks_too(api: Api) -> None:
    api.clock.now = cst(2026, 11, 19, 9, 0)  # a Thursday
    event = dispatched(api)
    api.ok("co-lead", "POST", f"/v1/events/{event}/accept")
    task = add(api, event, api.co1, amount=2, unit="work_hours")["id"]  # due 11:00
    asked = api.ok("co-lead", "POST", f"/v1/events/{event}/requests", 201,
                   json={"kind": "suspend", "note": "等待管网改造"})["id"]
    api.clock.now = cst(2026, 11, 19, 9, 30)
    api.ok("co-disp", "POST", f"/v1/events/{event}/requests/{asked}/approve")
    api.clock.now = cst(2026, 11, 19, 15, 0)  # past the first deadline, but suspended
    co = tasks(api, event)["tasks"][1]
    assert (co["id"], co["light"], co["used_share"]) == (task, "green", 0.25)
    api.ok("co-lead", "POST", f"/v1/events/{event}/resume")
    co = tasks(api, event)["tasks"][1]
    # 4 working hours suspended (09:30-12:00, 13:30-15:00): 11:00 moves to 16:30
    assert co["deadline_at"] == "2026-11-19T08:30:00Z" and co["light"] == "green"
