"""城管通 (issue 18 item 4) through the API: an inspector reports once however often the phone
retries, follows the report, and checks the closure on site when the 监督中心 sends it; a
department worker sees the department's open work (lead and co-handling) and nobody else's;
the wrong roles, states and bodies are refused (in-process API, real PostgreSQL)."""

import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
REPORT = {"channel": "inspector", "category_code": "E01.02", "description": "垃圾堆放未清运",
          "latitude": 33.92, "longitude": 116.77}


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 17, 9, 0)) as api:
        api.cgj = api.department(unique("cgj"), "城管局")
        api.slj = api.department(unique("slj"), "水利局")
        api.person("fa-insp", Role.INSPECTOR)
        api.person("fa-insp2", Role.INSPECTOR)
        api.person("fa-disp", Role.DISPATCHER)
        api.person("fa-staff-cgj", Role.DEPARTMENT_STAFF, api.cgj)
        api.person("fa-staff-slj", Role.DEPARTMENT_STAFF, api.slj)
        yield api


def _photo(api: Api, who: str, event: int) -> int:
    return api.ok(who, "POST", f"/v1/events/{event}/attachments", 201,
                  files={"file": ("p.png", PNG, "image/png")})["id"]


def _step(api: Api, who: str, event: int, name: str, **body) -> dict:
    return api.ok(who, "POST", f"/v1/events/{event}/{name}", json=body)


def _keyed(api: Api, who: str, key: str):
    return api.client.post("/v1/events", json=REPORT,
                           headers=api.headers(who) | {"Idempotency-Key": key})


def test_a_retried_report_makes_one_event(api: Api) -> None:
    key = f"k-{unique('r')}"
    first = _keyed(api, "fa-insp", key)
    again = _keyed(api, "fa-insp", key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    first = first.json()["id"]
    # the key is the caller's own: another inspector's same key is another report
    assert _keyed(api, "fa-insp2", key).json()["id"] != first
    bad = _keyed(api, "fa-insp", "short")
    assert bad.status_code == 422 and "Idempotency-Key" in bad.json()["detail"]
    mine = api.ok("fa-insp", "GET", "/v1/field/reports")
    assert [e["id"] for e in mine].count(first) == 1
    assert all(e["reporter"] == "fa-insp" for e in mine)
    assert mine[0]["channel"] == "inspector" and mine[0]["state"] == "reported"


def test_inspector_checks_a_closure_on_site_once_per_round(api: Api) -> None:
    event = api.ok("fa-insp", "POST", "/v1/events", 201, json=REPORT)["id"]
    photo = _photo(api, "fa-insp", event)
    # not yet sent to 核查: refused with the state named
    early = api.post("fa-insp", f"/v1/events/{event}/site-check",
                     json={"result": "pass", "note": "ok", "attachment_ids": [photo]})
    assert early.status_code == 409 and "checking" in early.json()["detail"]
    for name, body in (("register", {}), ("dispatch", {"department_id": api.cgj})):
        _step(api, "fa-disp", event, name, **body)
    _step(api, "fa-staff-cgj", event, "accept")
    _step(api, "fa-staff-cgj", event, "feedback", note="已清运")
    _step(api, "fa-disp", event, "check", note="请监督员核查")
    assert event in [e["id"] for e in api.ok("fa-insp", "GET", "/v1/field/checks")]
    assert api.post("fa-staff-cgj", f"/v1/events/{event}/site-check",
                    json={"result": "pass", "note": "x", "attachment_ids": [photo]}
                    ).status_code == 403
    no_photo = api.post("fa-insp", f"/v1/events/{event}/site-check",
                        json={"result": "pass", "note": "x", "attachment_ids": []})
    assert no_photo.status_code == 422 and "attachment_ids" in no_photo.text
    done = api.ok("fa-insp", "POST", f"/v1/events/{event}/site-check", 201,
                  json={"result": "fail", "note": "仍有垃圾", "attachment_ids": [photo]})
    assert done["result"] == "fail"
    twice = api.post("fa-insp", f"/v1/events/{event}/site-check",
                     json={"result": "pass", "note": "x", "attachment_ids": [photo]})
    assert twice.status_code == 409 and "already" in twice.json()["detail"]
    assert event not in [e["id"] for e in api.ok("fa-insp", "GET", "/v1/field/checks")]
    detail = api.ok("fa-insp", "GET", f"/v1/events/{event}")
    check = detail["transitions"][-1]
    assert (check["action"], check["actor"], check["note"]) == ("site_check", "fa-insp", "仍有垃圾")
    assert check["detail"]["result"] == "fail" and check["attachment_ids"] == [photo]
    # sent back (返工) and checked again: a new round takes a new site check
    _step(api, "fa-disp", event, "rework", note="核查不通过")
    _step(api, "fa-staff-cgj", event, "feedback", note="已再次清运")
    _step(api, "fa-disp", event, "check")
    again = _photo(api, "fa-insp", event)
    api.ok("fa-insp", "POST", f"/v1/events/{event}/site-check", 201,
           json={"result": "pass", "note": "已清理干净", "attachment_ids": [again]})
    assert _step(api, "fa-disp", event, "close")["state"] == "closed"


def test_a_worker_sees_the_department_s_open_work_only(api: Api) -> None:
    lead = api.ok("fa-insp", "POST", "/v1/events", 201, json=REPORT)["id"]
    _step(api, "fa-disp", lead, "register")
    _step(api, "fa-disp", lead, "dispatch", department_id=api.cgj)
    co = api.ok("fa-insp", "POST", "/v1/events", 201, json=REPORT)["id"]
    _step(api, "fa-disp", co, "register")
    _step(api, "fa-disp", co, "dispatch", department_id=api.slj)
    task = api.ok("fa-disp", "POST", f"/v1/events/{co}/tasks", 201,
                  json={"department_id": api.cgj, "instructions": "协助清运"})["id"]
    mine = {(t["event"]["id"], t["part"]): t for t in api.ok("fa-staff-cgj", "GET",
                                                               "/v1/field/tasks")}
    assert mine[(lead, "lead")]["task_state"] == "dispatched"
    assert mine[(lead, "lead")]["task_id"] is None
    assert mine[(co, "co")]["task_id"] == task
    assert mine[(co, "co")]["instructions"] == "协助清运"
    assert (co, "lead") not in mine
    theirs = {(t["event"]["id"], t["part"]) for t in api.ok("fa-staff-slj", "GET",
                                                           "/v1/field/tasks")}
    assert (co, "lead") in theirs and (lead, "lead") not in theirs
    assert api.get("fa-insp", "/v1/field/tasks").status_code == 403
    assert api.get("fa-staff-cgj", "/v1/field/checks").status_code == 403
