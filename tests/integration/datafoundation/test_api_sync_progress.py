"""The 数据汇聚 API beyond the register: mode cdc (MariaDB/MySQL sources only), composite keys
and key ranges accepted, a run's live progress as Server-Sent Events ending with `done`, and
the rows it set aside; both kept to the run's department."""

from __future__ import annotations

import threading

import orjson
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


def _events(api, path: str, headers: dict) -> list[tuple[str, dict]]:
    out, kind = [], None
    with api.stream("GET", path, headers=headers) as res:
        assert res.status_code == 200, res.read()
        for line in res.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                out.append((kind, orjson.loads(line[6:])))
    return out


def test_cdc_mode_progress_stream_and_quarantine(api, settings, mariadb, firms_table):
    url = settings.database_url.get_secret_value()
    admin = bearer(settings, Role.ADMIN, "t-df-admin2")
    data_admin = bearer(settings, Role.DATA_ADMIN, "t-data-admin2")
    a, b = unique("dept-pa"), unique("dept-pb")
    for dept in (a, b):
        ok(api.post("/v1/departments", json={"id": dept, "name": dept}, headers=admin), 201)
    staff_b = bearer(settings, Role.DEPARTMENT_STAFF, unique("staff-pb"), b)
    system = ok(api.post("/v1/systems", headers=data_admin, json={
        "slug": unique("prog").replace("-", "_"), "name": "企业登记", "department": a}), 201)
    source = ok(api.post("/v1/sources", headers=data_admin, json={
        "system_id": system["id"], "name": "db", "kind": "mariadb", "password": mariadb.password,
        "settings": {"host": "127.0.0.1", "port": mariadb.port, "database": "registry",
                     "user": mariadb.user}}), 201)
    pg_source = ok(api.post("/v1/sources", headers=data_admin, json={
        "system_id": system["id"], "name": "pg", "kind": "postgresql",
        "settings": {"host": "127.0.0.1", "database": "x"}}), 201)
    cdc = ok(api.post("/v1/syncs", headers=data_admin, json={
        "source_id": source["id"], "object": firms_table, "target_table": "firms_cdc",
        "mode": "cdc", "primary_key": ["id"]}), 201)
    assert cdc["mode"] == "cdc"
    with psycopg.connect(url, autocommit=True) as pg:  # not followed by other tests' workers
        pg.execute("UPDATE syncs SET enabled = false WHERE id = %s", (cdc["id"],))
    refused = api.post("/v1/syncs", headers=data_admin, json={
        "source_id": pg_source["id"], "object": "t", "target_table": "t_cdc", "mode": "cdc",
        "primary_key": ["id"]})
    assert refused.status_code == 422 and "mode: cdc" in refused.json()["detail"]

    # keyed on the USCC, which the registry holds twice for some firms: rows set aside
    sync = ok(api.post("/v1/syncs", headers=data_admin, json={
        "source_id": source["id"], "object": firms_table, "target_table": "firms_ranges",
        "mode": "full", "primary_key": ["uscc", "name"], "batch_rows": 50,
        "split_ranges": 1}), 201)
    assert sync["primary_key"] == ["uscc", "name"] and sync["split_ranges"] == 1
    worker = threading.Thread(target=run_sync, args=(url, SECRET_KEY, sync["id"]))
    worker.start()
    try:
        runs = []
        while not runs:  # the run row appears as soon as the worker begins
            runs = ok(api.get(f"/v1/sync-runs?sync_id={sync['id']}", headers=data_admin))
        run = runs[0]["id"]
        events = _events(api, f"/v1/sync-runs/{run}/events?interval_s=0.2", data_admin)
    finally:
        worker.join(60)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"progress"}
    last = events[-1][1]
    assert last["state"] == "succeeded" and last["rows_read"] == 303
    assert last["rows_written"] + last["rows_quarantined"] == 303
    assert last["rows_quarantined"] >= 1 and last["seconds_left"] is None
    aside = ok(api.get(f"/v1/sync-runs/{run}/quarantine", headers=data_admin))
    assert len(aside) == last["rows_quarantined"]
    assert aside[0]["source"] == "db" and aside[0]["source_table"] == firms_table
    assert "appears twice" in aside[0]["reason"] and aside[0]["row"]["uscc"]
    for path in (f"/v1/sync-runs/{run}/quarantine", f"/v1/sync-runs/{run}/events"):
        res = api.get(path, headers=staff_b)
        assert res.status_code == 403 and a in res.json()["detail"], path
    assert api.get("/v1/sync-runs/999999/quarantine", headers=data_admin).status_code == 404
