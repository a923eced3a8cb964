"""The catalogue and its portal through the API: register, search, apply -> approve -> the
granted key reads the data; refusal with a reason; unconditional grants extending one key;
revocation and expiry; files attached to a resource."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import Api, api_client, cst, unique

PDF = b"%PDF-1.4\n% a scanned register\n"


@pytest.fixture(scope="module")
def api(settings):
    # keys expire on the real clock (the API-key check), so this module runs near real time
    with api_client(settings, datetime.now(UTC).replace(microsecond=0)) as api:
        api.water = api.department(unique("cat-water"), "县水利局")
        api.person("cat-data", Role.DEPARTMENT_STAFF, "data-resources")
        api.person("cat-prov", Role.DEPARTMENT_STAFF, api.water)
        api.person("cat-app", Role.DEPARTMENT_STAFF, api.department(unique("cat-cgj")))
        api.person("cat-other", Role.DEPARTMENT_STAFF, api.department(unique("cat-other")))
        api.person("cat-viewer", Role.VIEWER)
        api.person("cat-disp", Role.DISPATCHER)
        yield api


def resource(api: Api, sharing: str, **over) -> str:
    body = {"classification": "2.03.001", "name": "城区排水管网档案", "provider_id": api.water,
            "summary": "排水管网的位置、管径与养护记录", "format": "xlsx",
            "items": [{"name": "管段编号", "type": "text"}, {"name": "管径", "type": "integer"}],
            "sharing_type": sharing, "sharing_conditions": "" if sharing == "unconditional"
            else "仅用于防汛调度", "update_cycle": "monthly", "published_on": "2026-11-01",
            **over}
    return api.ok("cat-prov", "POST", "/v1/catalogue/resources", 201, json=body)["code"]


def events_resource(api: Api) -> dict:
    found = api.ok("cat-viewer", "GET", "/v1/catalogue/resources",
                   params={"source_kind": "events"})
    assert len(found) == 1, "the platform registers its events dataset once"
    return found[0]


def apply(api: Api, code: str, app: str, who: str = "cat-app", **over) -> dict:
    body = {"application": app, "purpose": "防汛期间联动调度排水抢险", "days": 30, **over}
    return api.ok(who, "POST", f"/v1/catalogue/resources/{code}/requests", 201, json=body)


def test_register_search_and_browse(api: Api) -> None:
    code = resource(api, "conditional")
    assert code.startswith("2.03.001-")
    other = api.post("cat-other", "/v1/catalogue/resources", json={
        "classification": "2.03.001", "name": "x", "provider_id": api.water, "format": "csv",
        "sharing_type": "unconditional", "update_cycle": "daily", "published_on": "2026-11-01"})
    assert other.status_code == 403, "only the provider's own staff register its resources"
    hits = api.ok("cat-viewer", "GET", "/v1/catalogue/resources", params={"q": "排水管网"})
    assert code in [h["code"] for h in hits]
    assert events_resource(api)["provider_id"] == "data-resources"
    tree = api.ok("cat-viewer", "GET", "/v1/catalogue/classifications")
    assert any(c["level"] == 1 and c["prefix"] == "5" for c in tree)  # the platform's class
    assert any(c["prefix"] == "2.03" for c in tree)
    csv = api.get("cat-viewer", "/v1/catalogue/resources", params={"format": "csv"})
    assert csv.status_code == 200 and "sharing_type" in csv.text.splitlines()[0]


def test_apply_approve_and_the_granted_key_reads_the_data(api: Api) -> None:
    api.ok("cat-disp", "POST", "/v1/events", 201, json={
        "channel": "hotline", "category_code": "E05.01", "description": "catalogue probe 积水"})
    events = events_resource(api)
    short = apply(api, events["code"], "flood-board", purpose="看看")["request"]
    assert short["state"] == "refused" and "purpose" in short["check_result"]
    req = apply(api, events["code"], "flood-board")["request"]
    assert req["state"] == "with_provider" and req["provider_due_at"] is not None
    # only the provider decides
    assert api.post("cat-prov", f"/v1/catalogue/requests/{req['id']}/approve").status_code == 403
    assert api.post("cat-viewer", f"/v1/catalogue/requests/{req['id']}/approve"
                    ).status_code == 403
    granted = api.ok("cat-data", "POST", f"/v1/catalogue/requests/{req['id']}/approve")
    assert granted["state"] == "granted" and granted["grant_id"] is not None
    assert api.post("cat-other", f"/v1/catalogue/requests/{req['id']}/key").status_code == 403
    key = api.ok("cat-app", "POST", f"/v1/catalogue/requests/{req['id']}/key")["key"]
    again = api.post("cat-app", f"/v1/catalogue/requests/{req['id']}/key")
    assert again.status_code == 409, "a key is delivered once"

    with_key = {"X-API-Key": key}
    res = api.client.get(f"/v1/catalogue/resources/{events['code']}/data", headers=with_key)
    assert res.status_code == 200, res.text
    body = res.json()
    assert "catalogue probe 积水" not in str(body), "descriptions are not part of the dataset"
    assert "reporter" not in body["columns"] and "state" in body["columns"]
    assert body["rows"], "the key reads the events"
    other = resource(api, "unconditional", name="雨量站名录")
    res = api.client.get(f"/v1/catalogue/resources/{other}/data", headers=with_key)
    assert res.status_code == 403, "the key reads only what it was granted"
    assert api.client.get("/v1/events", headers=with_key).status_code == 403


def test_refusal_states_its_reason(api: Api) -> None:
    code = resource(api, "conditional", name="河道巡查记录")
    req = apply(api, code, "river-app")["request"]
    assert api.post("cat-prov", f"/v1/catalogue/requests/{req['id']}/refuse",
                    json={"reason": ""}).status_code == 422
    refused = api.ok("cat-prov", "POST", f"/v1/catalogue/requests/{req['id']}/refuse",
                     json={"reason": "涉及工程安全，暂不共享"})
    assert refused["state"] == "refused" and refused["reason"] == "涉及工程安全，暂不共享"
    again = api.post("cat-prov", f"/v1/catalogue/requests/{req['id']}/approve")
    assert again.status_code == 409
    mine = api.ok("cat-app", "GET", "/v1/catalogue/requests", params={"applicant": "cat-app"})
    assert req["id"] in [r["id"] for r in mine]


def test_not_shared_is_refused_with_its_basis(api: Api) -> None:
    code = resource(api, "not_shared", name="涉密水文资料",
                    sharing_conditions="《水文条例》第三十二条")
    req = apply(api, code, "hydro-app")["request"]
    assert req["state"] == "refused" and "水文条例" in req["check_result"]


def test_unconditional_grant_extends_one_key_then_revoke_and_expiry(api: Api) -> None:
    first, second = resource(api, "unconditional", name="泵站名录"), \
        resource(api, "unconditional", name="闸门名录")
    one = apply(api, first, "pump-app", days=10)
    assert one["request"]["state"] == "granted" and one["key"], "granted at once with a key"
    two = apply(api, second, "pump-app", days=40)
    assert two["key"] is None, "the application's key is extended, not a second one"
    grants = api.ok("cat-viewer", "GET", "/v1/catalogue/grants", params={"grantee": "cat-app"})
    by_request = {g["request_id"]: g for g in grants}
    g1, g2 = by_request[one["request"]["id"]], by_request[two["request"]["id"]]
    assert g1["api_key_id"] == g2["api_key_id"] and g2["key_issued"] is False
    with_key = {"X-API-Key": one["key"]}
    assert api.client.get(f"/v1/catalogue/resources/{second}/data",
                          headers=with_key).status_code == 200
    # revoking one grant keeps the key for the other
    res = api.ok("cat-prov", "POST", f"/v1/catalogue/grants/{g2['id']}/revoke",
                 json={"reason": "用途已完成"})
    assert res["key_revoked"] is False and res["grant"]["revoked_by"] == "cat-prov"
    assert api.client.get(f"/v1/catalogue/resources/{second}/data",
                          headers=with_key).status_code == 403
    assert api.client.get(f"/v1/catalogue/resources/{first}/data",
                          headers=with_key).status_code == 200
    # the first grant expires after its 10 days
    api.clock.now += timedelta(days=11)
    expired = api.client.get(f"/v1/catalogue/resources/{first}/data", headers=with_key)
    assert expired.status_code == 403
    api.clock.now -= timedelta(days=11)
    last = api.ok("cat-prov", "POST", f"/v1/catalogue/grants/{g1['id']}/revoke",
                  json={"reason": "停止使用"})
    assert last["key_revoked"] is True
    gone = api.client.get(f"/v1/catalogue/resources/{first}/data", headers=with_key)
    assert gone.status_code == 401, "a revoked key is refused outright"


def test_files_attached_to_a_resource(api: Api) -> None:
    code = resource(api, "unconditional", name="排水设施扫描件")
    up = api.ok("cat-prov", "POST", f"/v1/catalogue/resources/{code}/attachments", 201,
                files={"file": ("scan.pdf", PDF, "application/pdf")})
    assert up["size_bytes"] == len(PDF) and len(up["sha256"]) == 64
    assert api.post("cat-app", f"/v1/catalogue/resources/{code}/attachments",
                    files={"file": ("x.pdf", PDF, "application/pdf")}).status_code == 403
    assert api.get("cat-app", f"/v1/catalogue/resources/{code}/attachments/{up['id']}"
                   ).status_code == 403, "no grant yet"
    apply(api, code, "scan-app")
    got = api.get("cat-app", f"/v1/catalogue/resources/{code}/attachments/{up['id']}")
    assert got.status_code == 200 and got.content == PDF
    listed = api.ok("cat-app", "GET", f"/v1/catalogue/resources/{code}/data")
    assert [r["id"] for r in listed["rows"]] == [up["id"]]


def test_provider_time_limit_counts_working_days(settings) -> None:
    with api_client(settings, cst(2026, 9, 29, 10, 0)) as api:
        api.person("cat-app2", Role.DEPARTMENT_STAFF, api.department(unique("cat-a2")))
        api.person("cat-viewer2", Role.VIEWER)
        code = api.ok("cat-viewer2", "GET", "/v1/catalogue/resources",
                      params={"source_kind": "events"})[0]["code"]
        req = apply(api, code, "holiday-app", who="cat-app2")["request"]
        # Tue 29 Sep + 5 working days: 30 Sep, 8, 9, 10 (adjusted Saturday), 12 Oct
        assert req["provider_due_at"] == "2026-10-12T02:00:00Z"
        assert req["check_due_at"] == "2026-10-08T02:00:00Z"
        api.clock.now = cst(2026, 10, 13, 9, 0)
        late = api.ok("cat-viewer2", "GET", "/v1/catalogue/requests",
                      params={"applicant": "cat-app2"})[0]
        assert late["overdue"] is True


def test_a_code_registered_by_hand_does_not_stop_registration(api: Api) -> None:
    """A 信息资源代码 whose 顺序码 is not a number (written by another system or by hand) once
    made every registration, and every browse, in its classification fail (500/422)."""
    with psycopg.connect(api.settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute("INSERT INTO resources (code, classification, name, provider_id, format,"
                     " sharing_type, update_cycle, published_on, created_by) VALUES"
                     " (%s, '2.03.002', '手工登记', %s, 'xlsx', 'unconditional', 'monthly',"
                     " current_date, 'test')", (f"2.03.002-{unique('x')}", api.water))
    code = resource(api, "unconditional", classification="2.03.002")
    assert code.startswith("2.03.002-") and code.split("-")[1].isdigit()
    assert api.get("cat-viewer", "/v1/catalogue/resources").status_code == 200
