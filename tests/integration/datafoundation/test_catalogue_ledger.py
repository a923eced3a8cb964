"""一本账: a governed dataset registers and keeps current its catalogue entry (fields with
titles and elements, system, size, quality score) without undoing the provider's choices;
`cityops catalogue sync`; the 公共数据资源登记 flow and its CSV/XLSX export; share requests on a
dataset's entry keep their working-day limits."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import openpyxl
import psycopg
import pytest

from cityops.principal import Role
from datafoundation.catalogue import governed
from datafoundation.catalogue.registration import HEADERS
from datafoundation.governance import run as models
from datafoundation.governance import standards
from tests.component.test_events_kit import api_client, cst, unique
from tests.integration.datafoundation.governance.conftest import governed_copy
from tests.integration.datafoundation.services_kit import raw, synced_dataset


@pytest.fixture(scope="module")
def ledger(settings, mariadb, registry_source, database_url):
    dataset = synced_dataset(mariadb, registry_source, database_url, "ledger_firms")
    with api_client(settings, datetime.now(UTC).replace(microsecond=0)) as api:
        api.person("led-prov", Role.DEPARTMENT_STAFF, "scjgj")
        api.person("led-bureau", Role.DATA_ADMIN)
        api.person("led-viewer", Role.VIEWER)
        api.dataset = dataset
        yield api


def _resource(url: str, code: str) -> dict:
    with psycopg.connect(url) as db, db.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute("SELECT * FROM resources WHERE code = %s", (code,))
        return cur.fetchone()


def test_a_dataset_keeps_its_entry_current(ledger, database_url) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        code, outcome = governed.sync_dataset(db, ledger.dataset)
        assert outcome == "created" and code.startswith("3.01.001-")
        assert governed.sync_dataset(db, ledger.dataset) == (code, "same")
        system = db.execute("SELECT system_id, resource_code FROM datasets WHERE id = %s",
                            (ledger.dataset,)).fetchone()
        assert system[1] == code
        entry = _resource(database_url, code)
        assert entry["source_kind"] == "dataset" and entry["system_id"] == system[0]
        assert entry["row_count"] == len(raw(database_url, ledger.dataset))
        items = {i["name"]: i for i in entry["items"]}
        assert "_synced_at" not in items, "bookkeeping columns are not 信息项"
        assert items["legal_person"]["title"] == "法定代表人"
        assert items["legal_person"]["sensitivity"] == 2
        # governance since: an element mapped, a quality run scored; the provider's own
        # choice of sharing stays as it set it
        db.execute("UPDATE dataset_fields SET element_id = 'DE00123' WHERE dataset_id = %s"
                   " AND name = 'uscc'", (ledger.dataset,))
        db.execute("UPDATE resources SET sharing_type = 'not_shared', sharing_conditions ="
                   " '涉及商业秘密' WHERE code = %s", (code,))
        db.execute("INSERT INTO quality.runs (dataset_id, trigger, state, finished_at, score)"
                   " VALUES (%s, 'manual', 'succeeded', now(), 87.5)", (ledger.dataset,))
        assert governed.sync_dataset(db, ledger.dataset) == (code, "updated")
    entry = _resource(database_url, code)
    assert {i["name"]: i for i in entry["items"]}["uscc"]["element_id"] == "DE00123"
    assert float(entry["quality_score"]) == 87.5
    assert (entry["sharing_type"], entry["sharing_conditions"]) == ("not_shared", "涉及商业秘密")
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("UPDATE resources SET sharing_type = 'conditional', sharing_conditions ="
                   " '依申请共享' WHERE code = %s", (code,))


def test_cli_and_api_sync_every_dataset(ledger, processes) -> None:
    out = processes.run("catalogue", "sync", "--dataset", ledger.dataset)
    assert out.split("\t")[0] == ledger.dataset and out.strip().endswith(("same", "created"))
    done = ledger.ok("led-bureau", "POST", "/v1/catalogue/sync")
    assert ledger.dataset in {d["dataset"] for d in done}
    assert ledger.post("led-viewer", "/v1/catalogue/sync").status_code == 403


def _code(api) -> str:
    with psycopg.connect(api.url, autocommit=True) as db:
        return governed.sync_dataset(db, api.dataset)[0]


def test_registration_steps_and_the_platform_export(ledger) -> None:
    code = _code(ledger)
    path = f"/v1/catalogue/registrations/{code}"
    assert ledger.post("led-viewer", path, json={"state": "applied"}).status_code == 403
    assert ledger.post("led-bureau", path, json={"state": "accepted"}).status_code == 409
    assert ledger.ok("led-prov", "POST", path, json={"state": "applied"})["applied_at"]
    too_far = ledger.post("led-bureau", path, json={"state": "coded", "registration_code": "X"})
    assert too_far.status_code == 409 and "accepted" in too_far.json()["detail"]
    assert ledger.post("led-prov", path, json={"state": "accepted"}).status_code == 403
    for step in ("accepted", "reviewed", "publicized"):
        assert ledger.ok("led-bureau", "POST", path, json={"state": step})["state"] == step
    assert ledger.post("led-bureau", path, json={"state": "coded"}).status_code == 422
    reg = unique("GJ-340621").upper()
    coded = ledger.ok("led-bureau", "POST", path, json={"state": "coded",
                                                        "registration_code": reg})
    assert coded["registration_code"] == reg and coded["coded_at"]
    listed = ledger.ok("led-viewer", "GET", "/v1/catalogue/registrations",
                       params={"state": "coded"})
    assert code in [e["code"] for e in listed]
    csv = ledger.get("led-viewer", "/v1/catalogue/registrations",
                     params={"format": "csv", "provider_id": "scjgj"}).text.lstrip("\ufeff")
    lines = csv.splitlines()
    assert lines[0].split(",") == list(HEADERS)
    row = next(line for line in lines if code in line)
    assert reg in row and "赋码" in row and "法定代表人(legal_person" in row
    xlsx = ledger.get("led-viewer", "/v1/catalogue/registrations",
                      params={"format": "xlsx", "state": "coded"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == list(HEADERS)
    found = [r for r in rows[1:] if r[HEADERS.index("目录资源代码")] == code]
    assert found and found[0][HEADERS.index("登记编码")] == reg


def test_share_requests_on_a_dataset_entry_keep_working_day_limits(ledger) -> None:
    code = _code(ledger)
    ledger.person("led-app", Role.DEPARTMENT_STAFF, ledger.department(unique("led-a")))
    real_now, ledger.clock.now = ledger.clock.now, cst(2026, 9, 29, 10, 0)
    try:
        req = ledger.ok("led-app", "POST", f"/v1/catalogue/resources/{code}/requests", 201,
                        json={"application": "ledger-app", "purpose": "核对辖区企业登记信息",
                              "days": 30})["request"]
    finally:
        ledger.clock.now = real_now
    # Tue 29 Sep + 5 working days over the National Day holiday: 12 Oct (the portal's rule)
    assert req["state"] == "with_provider"
    assert req["provider_due_at"] == "2026-10-12T02:00:00Z"
    assert req["check_due_at"] == "2026-10-08T02:00:00Z"


def test_a_model_build_registers_its_target_in_the_catalogue(ledger, database_url,
                                                             tmp_path) -> None:
    with psycopg.connect(database_url, autocommit=True) as db:
        standards.load(db)
        models.run(db, None, governed_copy(tmp_path, ledger.dataset, "ledger"))
        rows = db.execute(
            "SELECT d.id, r.classification, r.items, r.row_count, g.state FROM datasets d"
            " JOIN resources r ON r.code = d.resource_code AND r.source_ref = d.id"
            " JOIN resource_registrations g ON g.resource_code = r.code"
            " WHERE d.id IN ('std.enterprises_ledger', 'topic.enterprises_ledger')").fetchall()
        built = db.execute("SELECT count(*) FROM topic.enterprises_ledger").fetchone()[0]
    entries = {r[0]: r[1:] for r in rows}
    assert entries["std.enterprises_ledger"][0] == "3.02.001"
    classification, items, count, state = entries["topic.enterprises_ledger"]
    assert (classification, count, state) == ("2.01.001", built, "draft")
    assert {i["name"]: i["element_id"] for i in items}["legal_person"] == "DE00008"
