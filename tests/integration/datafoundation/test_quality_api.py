"""The 数据质量 API: the data bureau sets rules and runs them; the providing department's staff
see their datasets' results, scores and correction tasks, another department's see nothing of
them; samples and held rows come masked."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from cityops.principal import Role
from tests.api_kit import api_settings, bearer, ok, unique
from tests.integration.datafoundation import quality_kit
from tests.integration.datafoundation.conftest import SECRET_KEY

registry_dataset = quality_kit.registry_dataset  # the fixture


@pytest.fixture(scope="module")
def api(settings, broker):
    configured = api_settings(settings, broker).model_copy(
        update={"secret_key": SecretStr(SECRET_KEY)})
    with TestClient(create_app(configured)) as client:
        yield client


def test_rules_runs_results_tasks_with_roles(api, settings, mariadb, registry_dataset):
    dataset, _sync = registry_dataset
    data_admin = bearer(settings, Role.DATA_ADMIN, "t-quality-admin")
    staff = bearer(settings, Role.DEPARTMENT_STAFF, unique("scjg-staff"), "scjgj")
    admin = bearer(settings, Role.ADMIN, "t-quality-sysadmin")
    other_dept = unique("dept-q")
    ok(api.post("/v1/departments", json={"id": other_dept, "name": other_dept},
                headers=admin), 201)
    outsider = bearer(settings, Role.DEPARTMENT_STAFF, unique("other-staff"), other_dept)

    bad = api.put(f"/v1/quality/rules/{dataset}", headers=data_admin, json={
        "yaml": "rules:\n  - {name: wrong_bound, kind: range, column: registered_capital, "
                "min: lots}\n"})
    assert bad.status_code == 422
    assert f"dataset {dataset}, rule wrong_bound" in bad.json()["detail"]
    assert api.put(f"/v1/quality/rules/{dataset}", headers=staff,
                   json={"yaml": quality_kit.RULES}).status_code == 403
    rules = ok(api.put(f"/v1/quality/rules/{dataset}", headers=data_admin,
                       json={"yaml": quality_kit.RULES}))
    assert rules["department"] == "scjgj" and len(rules["rules"]) == 10
    assert {r["name"]: r["dimension"] for r in rules["rules"]}["uscc_check"] == "准确性"

    assert api.post("/v1/quality/runs", headers=staff,
                    json={"dataset": dataset}).status_code == 403
    run = ok(api.post("/v1/quality/runs", headers=data_admin, json={"dataset": dataset}), 201)
    failed = {r["rule"]: r for r in run["results"] if not r["passed"]}
    assert set(failed) == {"uscc_check", "address_present", "uscc_once"}
    assert all("****" in row["phone"] for row in failed["uscc_check"]["sample"])

    latest = ok(api.get("/v1/quality/results", headers=staff, params={"dataset": dataset}))
    assert latest["id"] == run["id"]
    assert api.get("/v1/quality/results", headers=outsider,
                   params={"dataset": dataset}).status_code == 403
    tasks = ok(api.get("/v1/quality/tasks", headers=staff, params={"state": "open",
                                                                   "dataset": dataset}))
    assert {t["rule"] for t in tasks} == set(failed)
    assert ok(api.get("/v1/quality/tasks", headers=outsider)) == []
    by_dept = ok(api.get("/v1/quality/scores", headers=staff, params={"by": "department"}))
    assert {s["key"] for s in by_dept} == {"scjgj"}
    assert {s["dimension"] for s in by_dept} >= {"准确性", "完整性", "规范性"}
    assert ok(api.get("/v1/quality/scores", headers=outsider)) == []
    held = ok(api.get("/v1/quality/quarantine", headers=staff, params={"dataset": dataset}))
    assert held and all("****" in h["row_data"]["phone"] for h in held)
    assert {h["rule"] for h in held} == set(failed)
    assert api.get("/v1/quality/quarantine", headers=outsider,
                   params={"dataset": dataset}).status_code == 403
    assert ok(api.get("/v1/quality/rules", headers=outsider)) == []
    assert ok(api.get("/v1/quality/runs", headers=outsider)) == []
    runs = ok(api.get("/v1/quality/runs", headers=staff, params={"dataset": dataset}))
    assert runs[0]["id"] == run["id"] and runs[0]["state"] == "succeeded"
