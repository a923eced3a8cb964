"""The routes behind the 部门工作台 (issue 18): the provider approves with a shorter term (and
scope, all or nothing), a second decision is a 409; resources described anew without losing
someone else's change; files listed and read inline with their own type, each read audited;
校核纠错 tasks commented and resolved by their department only, a second resolution a 409."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cityops.principal import Role
from datafoundation.governance import Field, register_dataset
from datafoundation.quality import load_rules, run_dataset
from tests.component.test_events_kit import Api, api_client, unique

PDF = b"%PDF-1.4\n% a scanned register\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_BYTES = 4096


@pytest.fixture(scope="module")
def api(settings):
    small = settings.model_copy(update={"upload_max_bytes": MAX_BYTES})
    with api_client(small, datetime.now(UTC).replace(microsecond=0)) as api:
        api.own = api.department(unique("desk-water"), "县水利局")
        api.other = api.department(unique("desk-other"))
        api.person("desk-prov", Role.DEPARTMENT_STAFF, api.own)
        api.person("desk-prov2", Role.DEPARTMENT_STAFF, api.own)
        api.person("desk-app", Role.DEPARTMENT_STAFF, api.department(unique("desk-cgj")))
        api.person("desk-outsider", Role.DEPARTMENT_STAFF, api.other)
        api.person("desk-viewer", Role.VIEWER)
        api.person("desk-data", Role.DEPARTMENT_STAFF, "data-resources")
        yield api


def _entry(api: Api, **over) -> dict:
    return {"classification": "2.03.002", "name": "河道水位站档案", "provider_id": api.own,
            "summary": "水位站的位置与量程", "format": "xlsx",
            "items": [{"name": "站号", "type": "text"}], "sharing_type": "conditional",
            "sharing_conditions": "仅用于防汛调度", "update_cycle": "monthly",
            "published_on": "2026-11-01", **over}


def _request(api: Api, code: str, app: str) -> int:
    body = {"application": app, "purpose": "防汛期间联动调度排水抢险", "days": 30}
    made = api.ok("desk-app", "POST", f"/v1/catalogue/resources/{code}/requests", 201, json=body)
    assert made["request"]["state"] == "with_provider"
    return made["request"]["id"]


def test_decisions_term_scope_and_the_second_decider(api: Api) -> None:
    code = api.ok("desk-prov", "POST", "/v1/catalogue/resources", 201, json=_entry(api))["code"]
    first, second = _request(api, code, "desk-board"), _request(api, code, "desk-board2")
    path = f"/v1/catalogue/requests/{first}"
    desk = api.ok("desk-prov", "GET", "/v1/catalogue/desk")
    assert (desk["department_id"], desk["waiting_requests"]) == (api.own, 2)
    assert api.get("desk-viewer", "/v1/catalogue/desk").status_code == 403
    assert api.post("desk-outsider", f"{path}/approve", json={"days": 10}).status_code == 403
    assert api.post("desk-viewer", f"{path}/approve", json={"days": 10}).status_code == 403
    longer = api.post("desk-prov", f"{path}/approve", json={"days": 40})
    assert longer.status_code == 422 and longer.json()["detail"].startswith("days:")
    # scope needs a governed dataset behind the resource: refused, and nothing was granted
    scoped = api.post("desk-prov", f"{path}/approve", json={"days": 10, "fields": ["站号"]})
    assert scoped.status_code == 409 and "no dataset" in scoped.json()["detail"]
    assert api.ok("desk-prov", "GET", "/v1/catalogue/requests",
                  params={"resource_code": code})[0]["state"] == "with_provider"
    granted = api.ok("desk-prov", "POST", f"{path}/approve", json={"days": 10})
    assert granted["state"] == "granted" and granted["decided_by"] == "desk-prov"
    (grant,) = api.ok("desk-prov", "GET", "/v1/catalogue/grants", params={"resource_code": code})
    term = datetime.fromisoformat(grant["expires_at"]) - datetime.fromisoformat(
        granted["decided_at"])
    assert term == timedelta(days=10), "the provider's term, not the 30 days asked"
    assert api.ok("desk-prov", "GET", "/v1/catalogue/desk")["waiting_requests"] == 1
    late = api.post("desk-prov2", f"{path}/refuse", json={"reason": "与防汛无关"})
    assert late.status_code == 409 and late.json()["code"] == "conflict"
    assert "granted" in late.json()["detail"]
    bare = api.post("desk-prov", f"/v1/catalogue/requests/{second}/refuse", json={"reason": " "})
    assert bare.status_code == 422 and bare.json()["detail"].startswith("reason:")


def test_describe_anew_without_losing_a_change(api: Api) -> None:
    made = api.ok("desk-prov", "POST", "/v1/catalogue/resources", 201, json=_entry(api))
    path = f"/v1/catalogue/resources/{made['code']}"
    read = made["updated_at"]
    edited = api.ok("desk-prov", "PUT", path, json=_entry(
        api, name="河道水位站档案（2026版）", expected_updated_at=read))
    assert edited["name"] == "河道水位站档案（2026版）" and edited["updated_at"] != read
    stale = api.call("desk-prov2", "PUT", path, json=_entry(api, expected_updated_at=read))
    assert stale.status_code == 409 and "someone else" in stale.json()["detail"]
    assert api.call("desk-outsider", "PUT", path, json=_entry(api)).status_code == 403
    moved = api.call("desk-prov", "PUT", path, json=_entry(api, classification="2.03.003"))
    assert moved.status_code == 422 and moved.json()["detail"].startswith("classification:")
    platform = api.ok("desk-viewer", "GET", "/v1/catalogue/resources",
                      params={"source_kind": "events"})[0]
    answer = api.call("desk-data", "PUT", f"/v1/catalogue/resources/{platform['code']}",
                      json={**_entry(api), "classification": platform["classification"],
                            "provider_id": platform["provider_id"]})
    assert answer.status_code == 409, answer.text


def _upload(api: Api, code: str, name: str, data: bytes, kind: str):
    return api.post("desk-prov", f"/v1/catalogue/resources/{code}/attachments",
                    files={"file": (name, data, kind)})


def test_files_listed_read_inline_and_audited(api: Api) -> None:
    code = api.ok("desk-prov", "POST", "/v1/catalogue/resources", 201, json=_entry(api))["code"]
    pdf = _upload(api, code, "水位站分布.pdf", PDF, "application/pdf").json()
    _upload(api, code, "site.png", PNG, "image/png")
    docx = _upload(api, code, "台账.docx", b"PK\x03\x04" + b"\x00" * 40, DOCX).json()
    big = _upload(api, code, "big.png", PNG + b"\x00" * MAX_BYTES, "image/png")
    assert big.status_code == 422 and "over the limit" in big.json()["detail"]
    listed = api.ok("desk-prov", "GET", f"/v1/catalogue/resources/{code}/attachments")
    assert [f["filename"] for f in listed] == ["水位站分布.pdf", "site.png", "台账.docx"]
    assert api.get("desk-app", f"/v1/catalogue/resources/{code}/attachments").status_code == 403
    res = api.get("desk-prov", f"/v1/catalogue/resources/{code}/attachments/{pdf['id']}")
    assert res.status_code == 200 and res.content == PDF
    assert res.headers["content-type"] == "application/pdf"
    assert res.headers["content-disposition"].startswith("inline;")
    assert "UTF-8''%E6%B0%B4" in res.headers["content-disposition"]
    office = api.get("desk-prov", f"/v1/catalogue/resources/{code}/attachments/{docx['id']}")
    assert office.headers["content-disposition"].startswith("attachment;")
    with psycopg.connect(api.url) as conn:
        rows = conn.execute(
            "SELECT actor, detail->>'filename' FROM audit_log WHERE action ="
            " 'GET /v1/catalogue/resources/{code}/attachments/{object_id}' AND target LIKE %s"
            " ORDER BY id", (f"%/{code}/%",)).fetchall()
    assert rows == [("desk-prov", "水位站分布.pdf"), ("desk-prov", "台账.docx")]


def _failing_task(api: Api) -> int:
    dataset = f"raw_desk_{unique('q').replace('-', '_')}.gauges"
    schema = dataset.split(".")[0]
    with psycopg.connect(api.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {dataset} (id int PRIMARY KEY, station text)")
        conn.execute(f"INSERT INTO {dataset} VALUES (1, 'S01'), (2, '')")
        register_dataset(conn, dataset, "水位站", "raw", api.own, primary_key=["id"],
                         fields=[Field("id", "integer"), Field("station", "text")])
        load_rules(conn, "rules:\n  - {name: station_present, kind: not_null,"
                         " columns: [station]}\n", "test", dataset)
    run_dataset(api.url, dataset)
    (task,) = [t for t in api.ok("desk-prov", "GET", "/v1/quality/tasks", params={
        "dataset": dataset, "state": "open"})]
    return task["id"]


def test_quality_tasks_commented_and_resolved_by_their_department(api: Api) -> None:
    task = _failing_task(api)
    path = f"/v1/quality/tasks/{task}"
    assert api.post("desk-outsider", f"{path}/comments", json={"note": "x"}).status_code == 403
    assert api.post("desk-viewer", f"{path}/comments", json={"note": "x"}).status_code == 403
    blank = api.post("desk-prov", f"{path}/comments", json={"note": "   "})
    assert blank.status_code == 422 and blank.json()["detail"].startswith("note:")
    api.ok("desk-prov", "POST", f"{path}/comments", 201, json={"note": "2 号站名称待核实"})
    done = api.ok("desk-prov", "POST", f"{path}/resolve", json={"note": "已补录 2 号站名称"})
    assert done["kind"] == "resolve" and done["author"] == "desk-prov"
    again = api.post("desk-prov2", f"{path}/resolve", json={"note": "同上"})
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    (closed,) = [t for t in api.ok("desk-prov", "GET", "/v1/quality/tasks") if t["id"] == task]
    assert closed["state"] == "closed" and closed["closed_by"] == "desk-prov"
    assert closed["resolution"] == "已补录 2 号站名称"
    assert [n["kind"] for n in closed["notes"]] == ["comment", "resolve"]
