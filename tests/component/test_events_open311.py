"""Open311 GeoReport v2: a citizen's request through the citizen app becomes an event and its
status follows the workflow (open until closed)."""

import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique


@pytest.fixture(scope="module")
def api(settings):
    with api_client(settings, cst(2026, 11, 24, 10, 0)) as api:
        api.cgj = api.department(unique("o311-cgj"), "县城管局")
        api.person("o311-app", Role.OPERATOR)
        api.person("o311-disp", Role.DISPATCHER)
        api.person("o311-viewer", Role.VIEWER)
        api.person("o311-staff", Role.DEPARTMENT_STAFF, api.cgj)
        yield api


def test_services_are_the_event_categories(api: Api) -> None:
    services = api.ok("o311-app", "GET", "/v1/open311/services.json")
    by_code = {s["service_code"]: s for s in services}
    assert by_code["E01.02"]["service_name"] == "暴露垃圾"
    assert by_code["E01.02"]["group"] == "市容环境" and by_code["E01.02"]["type"] == "realtime"
    assert api.ok("o311-app", "GET", "/v1/open311/services/E01.02.json")["attributes"] == []
    assert api.get("o311-app", "/v1/open311/services/NOPE.json").status_code == 404


def test_roles_and_authentication(api: Api) -> None:
    assert api.get("o311-viewer", "/v1/open311/services.json").status_code == 403
    anon = api.client.get("/v1/open311/services.json")
    assert anon.status_code == 401


def test_a_request_is_an_event_and_closes_with_it(api: Api) -> None:
    created = api.ok("o311-app", "POST", "/v1/open311/requests.json", 201, data={
        "service_code": "E01.02", "description": "小区门口垃圾无人清运",
        "lat": "33.9167", "long": "116.7667", "first_name": "张", "media_url":
        "https://example.org/p/1.jpg", "email": "zhang@example.org"})
    rid = created[0]["service_request_id"]
    event = api.ok("o311-viewer", "GET", f"/v1/events/{rid}")
    assert event["channel"] == "citizen" and event["state"] == "reported"
    assert event["reporter"] == "citizen:张"
    got = api.ok("o311-app", "GET", f"/v1/open311/requests/{rid}.json")[0]
    assert got["status"] == "open" and got["lat"] == pytest.approx(33.9167)
    assert got["media_url"] == "https://example.org/p/1.jpg"
    assert got["expected_datetime"] is not None

    api.clock.now = cst(2026, 11, 24, 11, 0)
    for who, step, body in (("o311-disp", "register", {}),
                            ("o311-disp", "dispatch", {"department_id": api.cgj}),
                            ("o311-staff", "accept", {}), ("o311-staff", "feedback", {}),
                            ("o311-disp", "check", {}),
                            ("o311-disp", "close", {"note": "已清运完毕"})):
        api.ok(who, "POST", f"/v1/events/{rid}/{step}", json=body)
    done = api.ok("o311-app", "GET", f"/v1/open311/requests/{rid}.json")[0]
    # the public wording of the state, never the workflow's notes or who handled it
    assert done["status"] == "closed" and done["status_notes"] == "resolved"
    assert "已清运完毕" not in str(done) and "o311-disp" not in str(done)
    assert done["agency_responsible"] == "县城管局"
    assert done["updated_datetime"] == "2026-11-24T03:00:00Z"
    closed = api.ok("o311-app", "GET", "/v1/open311/requests.json",
                    params={"status": "closed", "service_code": "E01.02"})
    assert rid in [r["service_request_id"] for r in closed]
    still_open = api.ok("o311-app", "GET", "/v1/open311/requests.json", params={"status": "open"})
    assert rid not in [r["service_request_id"] for r in still_open]


def test_a_request_needs_a_location_and_a_known_service(api: Api) -> None:
    res = api.post("o311-app", "/v1/open311/requests.json",
                   data={"service_code": "E01.02", "description": "无位置"})
    assert res.status_code == 422 and "location" in res.json()["detail"]
    res = api.post("o311-app", "/v1/open311/requests.json",
                   data={"service_code": "X99", "description": "d", "address_string": "人民路"})
    assert res.status_code == 422 and "X99" in res.json()["detail"]


def test_the_citizen_app_uses_a_scoped_api_key_and_is_audited(api: Api) -> None:
    api.person("o311-security", Role.SECURITY_ADMIN)  # keys are the security admin's
    created = api.ok("o311-security", "POST", "/v1/api-keys", 201, json={
        "name": unique("citizen-app"), "role": "operator", "routes": ["* /v1/open311/*"],
        "expires_in_days": 30})
    key = {"X-API-Key": created["key"]}
    res = api.client.post("/v1/open311/requests.json", headers=key, data={
        "service_code": "E04.01", "description": "占道经营", "address_string": "淮海路"})
    assert res.status_code == 201, res.text
    rid = res.json()[0]["service_request_id"]
    event = api.ok("o311-viewer", "GET", f"/v1/events/{rid}")
    assert event["reporter"] == f"citizen via {created['name']}"
    # the key reaches nothing but Open311, even though its role could
    assert api.client.get("/v1/events", headers=key).status_code == 403
    api.person("o311-auditor", Role.AUDIT_ADMIN)  # the audit log is the auditor's alone
    audit = api.ok("o311-auditor", "GET", "/v1/audit", params={"actor": created["name"]})
    assert [a["action"] for a in audit["items"]] == ["POST /v1/open311/requests.json"]
    assert audit["items"][0]["outcome"] == "ok"


def _app_key(api: Api, name: str) -> dict[str, str]:
    api.person("o311-security", Role.SECURITY_ADMIN)  # keys are the security admin's
    created = api.ok("o311-security", "POST", "/v1/api-keys", 201, json={
        "name": unique(name), "role": "operator", "routes": ["* /v1/open311/*"],
        "expires_in_days": 30})
    return {"X-API-Key": created["key"]}


def test_an_application_lists_only_what_it_reported(api: Api) -> None:
    """Regression (issue #13, 12): requests.json listed every event of every channel, with
    the internal notes, to any citizen application."""
    app_a, app_b = _app_key(api, "app-a"), _app_key(api, "app-b")
    mine = api.client.post("/v1/open311/requests.json", headers=app_a, data={
        "service_code": "E01.02", "description": "垃圾满溢", "address_string": "人民路"})
    assert mine.status_code == 201, mine.text
    rid = mine.json()[0]["service_request_id"]
    theirs = api.client.post("/v1/open311/requests.json", headers=app_b, data={
        "service_code": "E01.02", "description": "另一个应用", "address_string": "淮海路"})
    other = theirs.json()[0]["service_request_id"]
    hotline = api.ok("o311-disp", "POST", "/v1/events", 201, json={
        "channel": "hotline", "category_code": "E01.02", "urgency": "normal",
        "description": "热线来电", "address": "濉溪路"})["id"]
    api.ok("o311-disp", "POST", f"/v1/events/{rid}/verify",
           json={"note": "网格员王五现场核实：居民李四投诉"})

    listed = api.client.get("/v1/open311/requests.json", headers=app_a)
    assert listed.status_code == 200
    assert [r["service_request_id"] for r in listed.json()] == [rid]
    assert str(hotline) not in {r["service_request_id"] for r in listed.json()}
    assert listed.json()[0]["status_notes"] == "being verified on site"
    assert "王五" not in listed.text and "o311-disp" not in listed.text
    assert api.client.get(f"/v1/open311/requests/{other}.json",
                          headers=app_a).status_code == 404
    assert api.client.get(f"/v1/open311/requests.json?service_request_id={other}",
                          headers=app_a).json() == []
    # the hotline desk (a person) sees the citizen channel, still not the hotline's own cases
    desk = {r["service_request_id"] for r in api.ok("o311-disp", "GET",
                                                    "/v1/open311/requests.json")}
    assert {rid, other} <= desk and str(hotline) not in desk
