"""数据服务 over the synced enterprise registry: a granted key reads /v1/datasets/{id}/rows with
sensitive fields masked in JSON and CSV, only its granted fields and rows; a field or rows
outside the grant answer 403 naming them, the attempt audited and counted; pages by keyset."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from cityops.principal import Role
from tests.component.test_events_kit import api_client, unique
from tests.helpers import wait_for
from tests.integration.datafoundation.services_kit import raw, synced_dataset

ROWS = "/v1/datasets/{}/rows"


@pytest.fixture(scope="module")
def svc(settings, mariadb, registry_source, database_url):
    dataset = synced_dataset(mariadb, registry_source, database_url, "svc_firms")
    with api_client(settings, datetime.now(UTC).replace(microsecond=0)) as api:
        api.person("svc-prov", Role.DEPARTMENT_STAFF, "scjgj")
        api.person("svc-app", Role.DEPARTMENT_STAFF, api.department(unique("svc-cgj")))
        code = api.ok("svc-prov", "POST", "/v1/catalogue/resources", 201, json={
            "classification": "1.02.001", "name": "企业登记信息", "provider_id": "scjgj",
            "format": "api/json", "sharing_type": "conditional",
            "sharing_conditions": "用于企业服务", "update_cycle": "daily",
            "published_on": "2026-11-01"})["code"]
        with psycopg.connect(database_url, autocommit=True) as db:
            db.execute("UPDATE datasets SET resource_code = %s WHERE id = %s", (code, dataset))
        req = api.ok("svc-app", "POST", f"/v1/catalogue/resources/{code}/requests", 201, json={
            "application": unique("firm-board"), "purpose": "企业服务专班核对企业信息",
            "days": 30})["request"]
        grant = api.ok("svc-prov", "POST", f"/v1/catalogue/requests/{req['id']}/approve")
        key = api.ok("svc-app", "POST", f"/v1/catalogue/requests/{req['id']}/key")["key"]
        api.dataset, api.grant, api.key = dataset, grant["grant_id"], {"X-API-Key": key}
        yield api


def _scope(api, **body) -> dict:
    body = {"fields": None, "unmasked_fields": [], "row_scope": {}, **body}
    return api.ok("svc-prov", "PUT", f"/v1/catalogue/grants/{api.grant}/scope", json=body)


def _read(api, **params):
    return api.client.get(ROWS.format(api.dataset), headers=api.key, params=params)


def _name_masked(value: str) -> str:
    return value[0] + "*" * (len(value) - 1)


def _phone_masked(value: str) -> str:  # 0561-6123456 -> 0561-6****56
    area, number = value.split("-")
    return f"{area}-{number[0]}****{number[5:]}"


def test_masked_in_json_and_csv_unless_the_grant_unmasks(svc, database_url) -> None:
    _scope(svc)
    source = raw(database_url, svc.dataset)
    res = _read(svc, fields="id,name,legal_person,phone", limit=10_000)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["masked"] == {"legal_person": "name", "phone": "phone"}
    assert len(body["rows"]) == len(source) and body["next"] is None
    for row in body["rows"]:
        firm = source[row["id"]]
        assert row["name"] == firm["name"]
        assert row["legal_person"] == _name_masked(firm["legal_person"])
        assert row["phone"] == _phone_masked(firm["phone"])
    csv = _read(svc, fields="id,legal_person,phone", format="csv", limit=10_000).text
    assert csv.splitlines()[0].lstrip("\ufeff") == "id,legal_person,phone"
    assert len(csv.splitlines()) == len(source) + 1
    for firm in source.values():  # not one clear value in the export
        assert firm["phone"] not in csv and f",{firm['legal_person']}," not in csv
    _scope(svc, unmasked_fields=["phone"])
    clear = _read(svc, fields="id,phone,legal_person", limit=10_000).json()
    assert clear["masked"] == {"legal_person": "name"}
    assert all(r["phone"] == source[r["id"]]["phone"] for r in clear["rows"])
    with psycopg.connect(database_url) as db:  # reading personal data in the clear is audited
        detail = db.execute("SELECT detail FROM audit_log WHERE target = %s AND outcome = 'ok'"
                            " ORDER BY id DESC LIMIT 1", (svc.dataset,)).fetchone()[0]
    assert detail == {"unmasked": ["phone"], "rows": len(source)}


def test_field_outside_the_grant_is_refused_by_name_and_audited(svc, database_url) -> None:
    _scope(svc, fields=["id", "uscc", "name", "address", "phone"])
    res = _read(svc, fields="id,name,legal_person")
    assert res.status_code == 403
    assert res.json()["code"] and "legal_person" in res.json()["detail"]
    default = _read(svc, limit=5).json()
    assert default["fields"] == ["id", "uscc", "name", "address", "phone"]
    # a filter on a masked field would reveal it value by value: refused, naming the field
    firm = next(iter(raw(database_url, svc.dataset).values()))
    probe = _read(svc, filter=f"phone:eq:{firm['phone']}")
    assert probe.status_code == 403 and "phone" in probe.json()["detail"]
    assert firm["phone"] not in probe.text
    bad = _read(svc, filter="registered_capital:eq:not-a-number")
    assert bad.status_code == 422 and "registered_capital" in bad.json()["detail"]
    unknown = _read(svc, fields="id,nope")
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]
    with psycopg.connect(database_url) as db:
        audited = db.execute(
            "SELECT detail->>'refused' FROM audit_log WHERE target = %s AND outcome = 'denied'"
            " ORDER BY id", (svc.dataset,)).fetchall()
        counted = db.execute("SELECT count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok)"
                             " FROM dataset_calls WHERE dataset_id = %s", (svc.dataset,)
                             ).fetchone()
    refusals = [r[0] for r in audited]
    assert len(refusals) >= 2 and "legal_person" in refusals[-2] and "phone" in refusals[-1]
    assert all(firm["phone"] not in r for r in refusals)
    assert counted[1] >= 2 and counted[0] >= 1


def test_rows_stay_within_the_grants_scope(svc, database_url) -> None:
    _scope(svc, row_scope={"address": {"prefix": ["濉溪镇"]}})
    expected = raw(database_url, svc.dataset, "address LIKE '濉溪镇%'")
    body = _read(svc, fields="id,address", limit=10_000).json()
    assert {r["id"] for r in body["rows"]} == set(expected) and expected
    outside = _read(svc, filter="address:eq:韩村镇淮海路1号")
    assert outside.status_code == 403 and "address" in outside.json()["detail"]
    _scope(svc, row_scope={"status": {"in": ["存续"]}})
    inside = _read(svc, fields="id,status", filter="status:in:存续", limit=10_000).json()
    assert {r["id"] for r in inside["rows"]} == set(raw(database_url, svc.dataset,
                                                        "status = '存续'"))
    assert _read(svc, filter="status:in:存续,吊销").status_code == 403


def test_keyset_pages_with_filters_cover_every_row_once(svc, database_url) -> None:
    _scope(svc)
    where = "status IN ('存续', '在业') AND registered_capital BETWEEN 100000 AND 30000000"
    expected = raw(database_url, svc.dataset, where)
    seen: list[int] = []
    after = None
    for _ in range(100):
        params = {"fields": "id,status", "limit": 25, "filter": [
            "status:in:存续,在业", "registered_capital:range:100000,30000000"]}
        body = _read(svc, **params, **({"after": after} if after else {})).json()
        seen += [r["id"] for r in body["rows"]]
        after = body["next"]
        if after is None:
            break
    assert seen == sorted(expected) and len(seen) > 25
    assert _read(svc, after="garbage!").status_code == 422
    svc.person("svc-other", Role.DEPARTMENT_STAFF, svc.department(unique("svc-oth")))
    stranger = svc.get("svc-other", ROWS.format(svc.dataset))
    assert stranger.status_code == 403 and "no live grant" in stranger.json()["detail"]
    grantee = svc.get("svc-app", ROWS.format(svc.dataset), params={"limit": 1})
    assert grantee.status_code == 200, "the grantee in person reads as its key does"
    assert "_synced_at" not in grantee.json()["fields"] and "uscc" in grantee.json()["fields"]


def test_the_service_registry_counts_every_call(svc, database_url) -> None:
    _scope(svc, fields=["id", "status"])
    assert _read(svc, fields="id,address").status_code == 403  # a field outside the scope
    _scope(svc)
    assert _read(svc, limit=3).status_code == 200
    with psycopg.connect(database_url) as db:
        ok, refused, consumers = db.execute(
            "SELECT count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok),"
            " count(DISTINCT caller) FILTER (WHERE ok) FROM dataset_calls"
            " WHERE dataset_id = %s", (svc.dataset,)).fetchone()
    entries = svc.ok("svc-app", "GET", "/v1/services", params={"kind": "dataset",
                                                               "q": svc.dataset})
    entry = next(e for e in entries if e["id"] == svc.dataset)
    assert (entry["calls_7d"], entry["refused_7d"], entry["consumers_30d"]) == (
        ok, refused, consumers)
    assert entry["calls_1d"] == ok and entry["grants"] == 1 and entry["last_call_at"]
    assert entry["path"] == f"/v1/datasets/{svc.dataset}/rows"
    # the key's calls reach the metering too: the route appears as an api entry with the
    # answered and the refused calls (the metering flushes about once a second, so an entry
    # can show the refused calls of earlier tests before this test's answered one)
    route = "GET /v1/datasets/{dataset_id}/rows"
    found = wait_for(lambda: [e for e in svc.ok("svc-app", "GET", "/v1/services",
                                                params={"kind": "api", "q": route})
                              if e["id"] == route and e["calls_7d"] >= 1
                              and e["refused_7d"] >= 1],
                     what="the metered route with answered and refused calls in the registry")
    assert found[0]["consumers_30d"] >= 1
    csv = svc.get("svc-app", "/v1/services", params={"format": "csv", "kind": "resource"})
    assert csv.status_code == 200 and "calls_7d" in csv.text.splitlines()[0]
