"""The routes behind the data admin's and the auditor's console pages (issue 18): alarm rules
with their 24-hour preview over the 1-minute rollups, event categories and time limits, the
audit log's filters, export and chain verification; each refused to the wrong role."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.settings import Settings
from tests.api_kit import api_settings, bearer, ok, register_device, register_gateway, unique
from tests.conftest import BrokerFixture


@pytest.fixture(scope="module")
def client(settings: Settings, broker: BrokerFixture):
    with TestClient(create_app(api_settings(settings, broker))) as c:
        yield c


def _rule(rule_id: str, device: str, **fields) -> dict:
    return {"id": rule_id, "kind": "threshold", "severity": "major", "title": "电压高",
            "target": {"devices": [device], "point": "voltage"}, "above": 30, **fields}


def _minutes(settings: Settings, device: str, maxima: list[float]) -> None:
    """One rollup minute per value, two hours ago onwards (the preview's only input)."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    with psycopg.connect(settings.database_url.get_secret_value()) as conn:
        point = conn.execute("SELECT id FROM points WHERE device_id = %s AND name = 'voltage'",
                             (device,)).fetchone()[0]
        conn.cursor().executemany(
            "INSERT INTO rollup_1m (bucket, point_id, sum, count, min, max)"
            " VALUES (%s, %s, %s, 1, %s, %s)",
            [(start + timedelta(minutes=i), point, v, v, v) for i, v in enumerate(maxima)])


def test_rules_validated_per_field_saved_switched_and_previewed(
    client: TestClient, settings: Settings
) -> None:
    admin, data = bearer(settings, "admin"), bearer(settings, "data_admin")
    device = register_device(client, admin, register_gateway(client, admin)["gateway"]["id"])["id"]
    rule_id = unique("r")
    assert client.get("/v1/rules", headers=bearer(settings, "viewer")).status_code == 403
    assert client.get("/v1/rules", headers=bearer(settings, "audit_admin")).status_code == 403

    bad = client.post("/v1/rules", headers=data, json=_rule(rule_id, device, clear=40,
                                                             for_s=-1, severity="loud"))
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_input"
    detail = bad.json()["detail"]  # one `field: message` part per problem, no kind tag
    assert "severity: " in detail and "for_s: " in detail and "threshold." not in detail
    both = client.post("/v1/rules", headers=data, json=_rule(rule_id, device, below=1))
    assert "give exactly one of `above` and `below`" in both.json()["detail"]

    made = ok(client.post("/v1/rules", headers=data, json=_rule(rule_id, device, clear=20)), 201)
    assert made["enabled"] and made["body"]["clear"] == 20 and made["open_alarms"] == 0
    taken = client.post("/v1/rules", headers=data, json=_rule(rule_id, device))
    assert taken.status_code == 409 and taken.json()["detail"].startswith("id: ")
    other = client.put(f"/v1/rules/{rule_id}", headers=data, json=_rule("else", device))
    assert other.status_code == 422 and other.json()["detail"].startswith("id: ")
    edited = ok(client.put(f"/v1/rules/{rule_id}", headers=data,
                           json=_rule(rule_id, device, above=32, clear=20)))
    assert edited["body"]["above"] == 32
    off = ok(client.put(f"/v1/rules/{rule_id}/enabled", headers=data, json={"enabled": False}))
    assert off["enabled"] is False and off["body"]["enabled"] is False
    listed = {r["id"]: r["kind"] for r in ok(client.get("/v1/rules", headers=admin))}
    assert listed[rule_id] == "threshold"
    platform = next(i for i, kind in listed.items() if kind == "platform")  # migration 059
    own = client.put(f"/v1/rules/{platform}", headers=data, json=_rule(platform, device))
    assert own.status_code == 409 and own.json()["detail"].startswith("kind: ")

    # cleared, beyond, in between (hysteresis holds), beyond, cleared, beyond, beyond
    _minutes(settings, device, [10, 35, 25, 35, 15, 36, 35])
    seen = ok(client.post("/v1/rules/preview", headers=data, json=_rule(rule_id, device,
                                                                       clear=20)))
    assert seen["alarms"] == 2 and seen["basis"] == "rollup_1m"
    (row,) = seen["devices"]
    assert (row["device"], row["alarms"], row["minutes"], row["peak"]) == (device, 2, 4, 36)
    no_hysteresis = ok(client.post("/v1/rules/preview", headers=data,
                                   json=_rule(rule_id, device)))
    assert no_hysteresis["alarms"] == 3
    longer = ok(client.post("/v1/rules/preview", headers=data,
                            json=_rule(rule_id, device, clear=20, for_s=180)))
    assert longer["alarms"] == 0  # each raise stayed beyond two minutes only
    offline = ok(client.post("/v1/rules/preview", headers=data, json={
        "id": rule_id, "kind": "offline", "severity": "minor", "target": {"devices": [device]},
        "after_s": 600}))
    assert offline["alarms"] == 1  # silent for the last two hours
    rate = client.post("/v1/rules/preview", headers=data, json={
        "id": rule_id, "kind": "rate_of_change", "severity": "minor",
        "target": {"point": "voltage"}, "max_per_s": 1})
    assert rate.status_code == 422 and rate.json()["detail"].startswith("kind: ")


def test_categories_and_time_limits_kept_by_the_data_admin(
    client: TestClient, settings: Settings
) -> None:
    data, viewer = bearer(settings, "data_admin"), bearer(settings, "viewer")
    code = f"F9{unique('x')[-5:].upper().replace('-', '')}"[:8]
    body = {"code": code, "kind": "facility", "major": "公用设施", "minor": "测试井盖",
            "register_rule": "缺失即立案", "close_rule": "补齐"}
    assert client.post("/v1/event-categories", headers=viewer, json=body).status_code == 403
    wrong = client.post("/v1/event-categories", headers=data, json={**body, "code": "f1"})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("code: ")
    nowhere = client.post("/v1/event-categories", headers=data,
                          json={**body, "department_id": "no-such-bureau"})
    assert nowhere.status_code == 422 and "department_id: " in nowhere.json()["detail"]
    ok(client.post("/v1/event-categories", headers=data, json=body), 201)
    assert client.post("/v1/event-categories", headers=data, json=body).status_code == 409
    changed = ok(client.put(f"/v1/event-categories/{code}", headers=data,
                            json={k: v for k, v in body.items() if k != "code"} | {
                                "minor": "井盖丢失"}))
    assert changed["minor"] == "井盖丢失"
    limit = {"category_code": code, "urgency": "urgent", "step": "dispose", "amount": 4,
             "unit": "work_hours"}
    ok(client.put("/v1/event-time-limits", headers=data, json=limit))
    ok(client.put("/v1/event-time-limits", headers=data, json=limit | {"amount": 2}))
    listed = ok(client.get("/v1/event-categories", headers=data))
    assert [t["amount"] for t in listed["time_limits"] if t["category_code"] == code] == [2]
    zero = client.put("/v1/event-time-limits", headers=data, json=limit | {"amount": 0})
    assert zero.status_code == 422 and zero.json()["detail"].startswith("amount: ")


def test_the_audit_log_filtered_exported_and_verified(
    client: TestClient, settings: Settings
) -> None:
    data, auditor = bearer(settings, "data_admin", unique("da")), bearer(settings, "audit_admin")
    name = unique("r")
    client.put(f"/v1/rules/{name}/enabled", headers=data, json={"enabled": True})  # 404
    assert client.get("/v1/audit", headers=bearer(settings, "admin")).status_code == 403
    page = ok(client.get("/v1/audit", headers=auditor, params={
        "action": "/v1/rules/{rule_id}/enabled", "target": name, "outcome": "invalid"}))
    assert page["total"] == 1 and page["items"][0]["status"] == 404, page
    who = page["items"][0]["actor"]
    assert who.startswith("da-")
    later = ok(client.get("/v1/audit", headers=auditor, params={
        "target": name, "since": (datetime.now(UTC) + timedelta(minutes=5)).isoformat()}))
    assert later["total"] == 0
    export = client.get("/v1/audit/export", headers=auditor, params={"target": name})
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["actor"] for r in rows] == [who]
    exports = ok(client.get("/v1/audit", headers=auditor, params={"action": "audit.export"}))
    assert exports["items"][0]["detail"]["target"] == name  # the export is itself audited
    verdict = ok(client.get("/v1/audit/verify", headers=auditor))
    assert verdict["ok"] is True and verdict["checked"] > 0 and verdict["first_broken_id"] is None
