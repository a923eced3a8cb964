"""The event life cycle through the API, by the roles that own each step, with every side
branch and the illegal moves refused (in-process API, real PostgreSQL, fixed clock)."""

from datetime import timedelta

import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 16, 9, 0)) as api:
        api.cgj = api.department(unique("cgj"), "城管局")
        api.slj = api.department(unique("slj"), "水利局")
        api.person("ev-disp1", Role.DISPATCHER)
        api.person("ev-disp2", Role.DISPATCHER)
        api.person("ev-op", Role.OPERATOR)
        api.person("ev-viewer", Role.VIEWER)
        api.person("ev-staff-cgj", Role.DEPARTMENT_STAFF, api.cgj)
        api.person("ev-staff-slj", Role.DEPARTMENT_STAFF, api.slj)
        yield api


def report(api: Api, who: str = "ev-op", **over) -> int:
    body = {"channel": "hotline", "category_code": "E01.02",
            "description": "人民路与淮海路口垃圾堆放", "address": "人民路", **over}
    return api.ok(who, "POST", "/v1/events", 201, json=body)["id"]


def step(api: Api, who: str, event: int, name: str, status: int = 200, **body) -> dict:
    return api.ok(who, "POST", f"/v1/events/{event}/{name}", status, json=body)


def to_processing(api: Api, event: int, dept: str) -> None:
    step(api, "ev-disp1", event, "register")
    step(api, "ev-disp1", event, "dispatch", department_id=dept)
    staff = "ev-staff-cgj" if dept == api.cgj else "ev-staff-slj"
    step(api, staff, event, "accept")


def test_full_life_cycle_by_the_right_roles(api: Api) -> None:
    event = report(api)
    assert api.ok("ev-viewer", "GET", f"/v1/events/{event}")["state"] == "reported"
    # wrong roles are refused before anything happens
    assert api.post("ev-viewer", f"/v1/events/{event}/verify").status_code == 403
    assert api.post("ev-staff-cgj", f"/v1/events/{event}/register").status_code == 403
    step(api, "ev-disp1", event, "verify", note="派监督员核实")
    step(api, "ev-disp1", event, "register", note="符合立案条件")
    dispatched = step(api, "ev-disp1", event, "dispatch", department_id=api.cgj)
    assert dispatched["state"] == "dispatched" and dispatched["department_id"] == api.cgj
    # staff of another department may not take it
    assert api.post("ev-staff-slj", f"/v1/events/{event}/accept").status_code == 403
    step(api, "ev-staff-cgj", event, "accept")
    api.clock.now += timedelta(hours=1)
    photo = api.ok("ev-staff-cgj", "POST", f"/v1/events/{event}/attachments", 201,
                   files={"file": ("after.png", PNG, "image/png")})
    step(api, "ev-staff-cgj", event, "feedback", note="已清运", attachment_ids=[photo["id"]])
    step(api, "ev-disp1", event, "check")
    closed = step(api, "ev-disp1", event, "close", note="核查通过")
    assert closed["state"] == "closed" and closed["closed_on_time"] is True
    assert closed["disposed_on_time"] is True and closed["clock"]["light"] is None
    detail = api.ok("ev-viewer", "GET", f"/v1/events/{event}")
    actions = [(t["action"], t["actor"]) for t in detail["transitions"]]
    assert actions == [
        ("report", "ev-op"), ("verify", "ev-disp1"), ("register", "ev-disp1"),
        ("dispatch", "ev-disp1"), ("accept", "ev-staff-cgj"), ("feedback", "ev-staff-cgj"),
        ("check", "ev-disp1"), ("close", "ev-disp1"),
    ]
    feedback = detail["transitions"][5]
    assert feedback["note"] == "已清运" and feedback["attachment_ids"] == [photo["id"]]
    got = api.get("ev-viewer", f"/v1/events/{event}/attachments/{photo['id']}")
    assert got.content == PNG and got.headers["content-type"] == "image/png"


def test_illegal_transitions_answer_409(api: Api) -> None:
    event = report(api)
    res = api.post("ev-disp1", f"/v1/events/{event}/close")
    assert res.status_code == 409 and res.json()["code"] == "conflict"
    assert "reported" in res.json()["detail"]
    assert api.post("ev-disp1", f"/v1/events/{event}/dispatch",
                    json={"department_id": api.cgj}).status_code == 409
    to_processing(api, event, api.cgj)
    assert api.post("ev-disp1", f"/v1/events/{event}/register").status_code == 409
    assert api.post("ev-staff-cgj", f"/v1/events/{event}/accept").status_code == 409
    # a cancel request does not fit a processing event
    res = api.post("ev-disp1", f"/v1/events/{event}/requests",
                   json={"kind": "cancel", "note": "重复"})
    assert res.status_code == 409


def test_cancel_needs_another_dispatchers_approval(api: Api) -> None:
    event = report(api)
    req = api.ok("ev-disp1", "POST", f"/v1/events/{event}/requests", 201,
                 json={"kind": "cancel", "note": "重复上报"})["id"]
    own = api.post("ev-disp1", f"/v1/events/{event}/requests/{req}/approve")
    assert own.status_code == 403
    assert api.post("ev-staff-cgj", f"/v1/events/{event}/requests/{req}/approve"
                    ).status_code == 403
    done = api.ok("ev-disp2", "POST", f"/v1/events/{event}/requests/{req}/approve",
                  json={"note": "同意作废"})
    assert done["state"] == "cancelled"
    assert api.post("ev-disp1", f"/v1/events/{event}/verify").status_code == 409
    again = api.post("ev-disp2", f"/v1/events/{event}/requests/{req}/approve")
    assert again.status_code == 409


def test_refusal_needs_a_reason_and_keeps_the_state(api: Api) -> None:
    event = report(api)
    req = api.ok("ev-disp1", "POST", f"/v1/events/{event}/requests", 201,
                 json={"kind": "cancel", "note": "不属实"})["id"]
    res = api.post("ev-disp2", f"/v1/events/{event}/requests/{req}/refuse")
    assert res.status_code == 422
    kept = api.ok("ev-disp2", "POST", f"/v1/events/{event}/requests/{req}/refuse",
                  json={"note": "现场核实属实"})
    assert kept["state"] == "reported"
    detail = api.ok("ev-viewer", "GET", f"/v1/events/{event}")
    assert detail["requests"][0]["state"] == "refused"
    assert detail["requests"][0]["decision_note"] == "现场核实属实"


def test_return_to_the_dispatcher_then_redispatch(api: Api) -> None:
    event = report(api, category_code="E05.01", description="道路积水")
    to_processing(api, event, api.slj)
    # only the department the event is with may ask
    assert api.post("ev-staff-cgj", f"/v1/events/{event}/requests",
                    json={"kind": "return", "note": "x"}).status_code == 403
    req = api.ok("ev-staff-slj", "POST", f"/v1/events/{event}/requests", 201,
                 json={"kind": "return", "note": "属城管局职责"})["id"]
    back = api.ok("ev-disp1", "POST", f"/v1/events/{event}/requests/{req}/approve")
    assert back["state"] == "registered" and back["department_id"] is None
    assert back["clock"]["step"] == "dispatch"
    step(api, "ev-disp1", event, "dispatch", department_id=api.cgj)
    assert step(api, "ev-staff-cgj", event, "accept")["department_id"] == api.cgj


def test_rework_when_the_check_fails(api: Api) -> None:
    event = report(api)
    to_processing(api, event, api.cgj)
    step(api, "ev-staff-cgj", event, "feedback", note="已处理")
    step(api, "ev-disp1", event, "check")
    again = step(api, "ev-disp1", event, "rework", note="现场仍有垃圾")
    assert again["state"] == "processing" and again["rework_count"] == 1
    assert again["department_id"] == api.cgj and again["clock"]["step"] == "dispose"
    step(api, "ev-staff-cgj", event, "feedback", note="已彻底清理")
    step(api, "ev-disp1", event, "check")
    assert step(api, "ev-disp1", event, "close")["state"] == "closed"


def test_suspension_stops_the_clock_and_resume_restarts_it(api: Api) -> None:
    api.clock.now = cst(2026, 11, 23, 9, 0)  # Monday
    event = report(api, category_code="E06.99")  # the default 3 working days to dispose
    to_processing(api, event, api.cgj)
    before = api.ok("ev-viewer", "GET", f"/v1/events/{event}")["clock"]
    req = api.ok("ev-staff-cgj", "POST", f"/v1/events/{event}/requests", 201,
                 json={"kind": "suspend", "note": "需上级协调"})["id"]
    hung = api.ok("ev-disp1", "POST", f"/v1/events/{event}/requests/{req}/approve")
    assert hung["state"] == "suspended"
    api.clock.now = cst(2026, 11, 25, 9, 0)  # two working days later
    still = api.ok("ev-viewer", "GET", f"/v1/events/{event}")["clock"]
    assert still["step_used_share"] == before["step_used_share"]
    resumed = step(api, "ev-staff-cgj", event, "resume")
    assert resumed["state"] == "processing"
    assert before["step_deadline_at"] == "2026-11-26T01:00:00Z"  # Mon 09:00 + 3 working days
    # moved by the two working days it stood still: Thursday 09:00 becomes Monday 09:00
    assert resumed["clock"]["step_deadline_at"] == "2026-11-30T01:00:00Z"
    api.clock.now = cst(2026, 11, 16, 9, 0)


def test_extension_moves_the_deadline(api: Api) -> None:
    api.clock.now = cst(2026, 11, 23, 9, 0)
    event = report(api, category_code="E06.99")
    to_processing(api, event, api.cgj)
    bad = api.post("ev-staff-cgj", f"/v1/events/{event}/requests",
                   json={"kind": "extend", "note": "材料未到"})
    assert bad.status_code == 422
    # 100,000 working days is no extension (the console once sent it): refused, naming the bound
    huge = api.post("ev-staff-cgj", f"/v1/events/{event}/requests", json={
        "kind": "extend", "note": "材料未到", "amount": 100000, "unit": "work_days"})
    assert huge.status_code == 422
    assert huge.json()["code"] == "invalid_input"
    assert "at most 30 work_days" in huge.json()["detail"]
    req = api.ok("ev-staff-cgj", "POST", f"/v1/events/{event}/requests", 201,
                 json={"kind": "extend", "note": "材料未到", "amount": 1, "unit": "work_days"})
    dup = api.post("ev-staff-cgj", f"/v1/events/{event}/requests",
                   json={"kind": "return", "note": "x"})
    assert dup.status_code == 409  # one pending request at a time
    moved = api.ok("ev-disp2", "POST", f"/v1/events/{event}/requests/{req['id']}/approve")
    assert moved["clock"]["step_deadline_at"] == "2026-11-27T01:00:00Z"  # was Thu, now Fri
    assert moved["state"] == "processing"
    api.clock.now = cst(2026, 11, 16, 9, 0)


def test_supervision_flag_and_listing(api: Api) -> None:
    event = report(api)
    assert api.post("ev-op", f"/v1/events/{event}/supervise",
                    json={"note": "领导关注"}).status_code == 403
    flagged = step(api, "ev-disp1", event, "supervise", note="领导关注")
    assert flagged["supervised"] is True
    listed = api.ok("ev-viewer", "GET", "/v1/events", params={"supervised": True})
    assert event in [e["id"] for e in listed]
    csv = api.get("ev-viewer", "/v1/events", params={"format": "csv", "limit": 5})
    assert csv.status_code == 200 and csv.text.lstrip("\ufeff").startswith("id,")


def test_attachments_are_type_and_size_checked(api: Api) -> None:
    event = report(api)
    fake = api.post("ev-op", f"/v1/events/{event}/attachments",
                    files={"file": ("x.png", b"MZ\x90\x00 not a png", "image/png")})
    assert fake.status_code == 422 and "not image/png" in fake.json()["detail"]
    exe = api.post("ev-op", f"/v1/events/{event}/attachments",
                   files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")})
    assert exe.status_code == 422
    big = b"%PDF-" + b"0" * api.settings.upload_max_bytes
    res = api.post("ev-op", f"/v1/events/{event}/attachments",
                   files={"file": ("big.pdf", big, "application/pdf")})
    assert res.status_code == 422 and "over the limit" in res.json()["detail"]
