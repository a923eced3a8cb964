"""The 数据汇聚 API: data_admin registers systems, sources (credentials stored encrypted, never
returned, logged or audited), syncs and runs; department staff see their own department's."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from cityops.principal import Role
from datafoundation.runner import run_sync
from tests.api_kit import api_settings, bearer, ok, unique
from tests.integration.datafoundation.conftest import SECRET_KEY


@pytest.fixture(scope="module")
def api(settings, broker):
    configured = api_settings(settings, broker).model_copy(
        update={"secret_key": SecretStr(SECRET_KEY)})
    with TestClient(create_app(configured)) as client:
        yield client


def test_register_source_sync_and_runs_with_roles(api, settings, mariadb, firms_table):
    url = settings.database_url.get_secret_value()
    admin = bearer(settings, Role.ADMIN, "t-df-admin")
    data_admin = bearer(settings, Role.DATA_ADMIN, "t-data-admin")
    a, b = unique("dept-a"), unique("dept-b")
    for dept in (a, b):
        ok(api.post("/v1/departments", json={"id": dept, "name": dept}, headers=admin), 201)
    staff_a = bearer(settings, Role.DEPARTMENT_STAFF, unique("staff-a"), a)
    staff_b = bearer(settings, Role.DEPARTMENT_STAFF, unique("staff-b"), b)
    slug = unique("reg").replace("-", "_")
    system = ok(api.post("/v1/systems", headers=data_admin, json={
        "slug": slug, "name": "企业登记系统", "department": a, "dengbao_level": 2,
        "deployment": "onprem", "database_kind": "mariadb"}), 201)
    assert api.post("/v1/systems", headers=staff_a, json={
        "slug": "x1", "name": "x", "department": a}).status_code == 403
    changed = ok(api.patch(f"/v1/systems/{system['id']}", headers=data_admin, json={
        "vendor": "新承建单位", "status": "planned", "dengbao_level": 3}))
    assert (changed["vendor"], changed["status"], changed["dengbao_level"], changed["slug"]) \
        == ("新承建单位", "planned", 3, slug)
    assert api.patch(f"/v1/systems/{system['id']}", headers=staff_a,
                     json={"vendor": "x"}).status_code == 403
    bad = api.patch(f"/v1/systems/{system['id']}", headers=data_admin, json={"slug": "other"})
    assert bad.status_code == 422 and "slug" in bad.text  # the raw schema's name stays

    settings_body = {"host": "127.0.0.1", "port": mariadb.port, "database": "registry",
                     "user": mariadb.user}
    res = api.post("/v1/sources", headers=data_admin, json={
        "system_id": system["id"], "name": "db", "kind": "mariadb",
        "settings": {**settings_body, "password": mariadb.password}})
    assert res.status_code == 422 and "settings.password" in res.json()["detail"]
    assert mariadb.password not in res.text
    source = ok(api.post("/v1/sources", headers=data_admin, json={
        "system_id": system["id"], "name": "db", "kind": "mariadb", "settings": settings_body,
        "password": mariadb.password}), 201)
    assert source["has_credentials"] is True and "password" not in source

    probe = ok(api.post(f"/v1/sources/{source['id']}/test", headers=staff_a,
                        json={"table": firms_table}))
    assert probe["ok"] and "uscc" in probe["columns"] and "updated_at" in probe["columns"]
    missing = ok(api.post(f"/v1/sources/{source['id']}/test", headers=data_admin,
                          json={"table": "nope"}))
    assert missing == {"ok": False, "columns": [],
                       "error": "source_error: source db: table nope does not exist"}
    assert api.post(f"/v1/sources/{source['id']}/test", headers=staff_b,
                    json={}).status_code == 403

    sync = ok(api.post("/v1/syncs", headers=data_admin, json={
        "source_id": source["id"], "object": firms_table, "target_table": "firms",
        "mode": "incremental", "cursor_column": "updated_at", "primary_key": ["id"],
        "schedule": "*/10 * * * *"}), 201)
    assert sync["target_schema"] == f"raw_{slug}"
    bad = api.post("/v1/syncs", headers=data_admin, json={
        "source_id": source["id"], "object": firms_table, "target_table": "f2",
        "mode": "incremental", "primary_key": ["id"], "schedule": "daily"})
    assert bad.status_code == 422 and "cursor_column" in bad.json()["detail"]

    queued = ok(api.post(f"/v1/syncs/{sync['id']}/run", headers=data_admin), 202)
    again = ok(api.post(f"/v1/syncs/{sync['id']}/run", headers=data_admin), 202)
    assert queued["job"] and again["job"] is None  # one queued run per sync
    run_sync(url, SECRET_KEY, sync["id"])  # what a worker does with it

    # a key of department B, even of the admin role, touches none of A's
    security = bearer(settings, "security_admin")  # keys are the security admin's
    key_b = {"X-API-Key": ok(api.post("/v1/api-keys", headers=security, json={
        "name": unique("kb"), "role": "admin", "routes": ["* /v1/*"], "departments": [b]}),
        201)["key"]}
    for path, body in (
            ("/v1/systems", {"slug": "x2", "name": "x", "department": a}),
            ("/v1/sources", {"system_id": system["id"], "name": "y", "kind": "mariadb",
                             "settings": {}}),
            ("/v1/syncs", {"source_id": source["id"], "object": "t", "target_table": "t",
                           "mode": "full", "primary_key": ["id"]}),
            (f"/v1/sources/{source['id']}/test", {}), (f"/v1/syncs/{sync['id']}/run", None)):
        res = api.post(path, headers=key_b, json=body)
        assert res.status_code == 403 and a in res.json()["detail"], (path, res.text)
    res = api.patch(f"/v1/systems/{system['id']}", headers=key_b, json={"department": b})
    assert res.status_code == 403 and a in res.json()["detail"]

    runs = ok(api.get(f"/v1/sync-runs?sync_id={sync['id']}", headers=staff_a))
    assert runs[0]["state"] == "succeeded" and runs[0]["rows_read"] == 303
    for path in ("/v1/systems", "/v1/sources", "/v1/syncs", "/v1/sync-runs"):
        seen_a = api.get(path, headers=staff_a).json()
        seen_b = api.get(path, headers=staff_b).json()
        assert seen_a and seen_b == [], path
        assert len(ok(api.get(path, headers=data_admin))) >= 1
    with psycopg.connect(url) as conn:
        audit = conn.execute("SELECT string_agg(detail::text || action || target, ' ') FROM "
                             "audit_log WHERE actor = 't-data-admin'").fetchone()[0]
        stored = conn.execute("SELECT secret FROM sources WHERE id = %s",
                              (source["id"],)).fetchone()[0]
    assert "POST /v1/sources" in audit and mariadb.password not in audit
    assert mariadb.password.encode() not in bytes(stored)
