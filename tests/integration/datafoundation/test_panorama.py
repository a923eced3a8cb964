"""数据全景 over the synced enterprise registry: per unit and per dataset rows, 昨日增量, files,
quality score and trend, sync health with a failing sync, each layer's production, service
use — each figure checked against a count made independently here."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from cityevents.calendar import COUNTY_TZ
from cityops.errors import PlatformError
from cityops.principal import Role
from datafoundation.runner import run_sync
from tests.component.test_events_kit import api_client
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync
from tests.integration.datafoundation.services_kit import raw, synced_dataset

BOARD = "/v1/dashboards/data"


def _one(url: str, query: str, *params):
    with psycopg.connect(url) as db:
        return db.execute(query, params).fetchone()


def _live(url: str, dataset: str) -> int:
    """Rows of any layer's table: raw tables mark rows deleted at the source; std and topic
    tables (other tests build them for this department too) do not; a dropped one has none."""
    schema, table = dataset.split(".")
    marked = _one(url, "SELECT bool_or(column_name = '_deleted_at') FROM"
                  " information_schema.columns WHERE table_schema = %s AND table_name = %s",
                  schema, table)[0]
    if marked is None:
        return 0
    return _one(url, f'SELECT count(*) FROM "{schema}"."{table}"'
                + (" WHERE _deleted_at IS NULL" if marked else ""))[0]


@pytest.fixture(scope="module")
def pano(settings, mariadb, registry_source, database_url):
    dataset = synced_dataset(mariadb, registry_source, database_url, "pan_firms", rows=120)
    broken = add_sync(database_url, registry_source, "no_such_table", mode="full",
                      target="pan_missing")
    with pytest.raises(PlatformError):
        run_sync(database_url, SECRET_KEY, broken)
    blob = b"%PDF-1.4 panorama"
    digest = hashlib.sha256(blob).hexdigest()
    with psycopg.connect(database_url, autocommit=True) as db:
        db.execute("INSERT INTO object_blobs VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                   (digest, len(blob), blob))
        db.execute("INSERT INTO objects (owner_kind, owner_id, department_id, filename,"
                   " content_type, size_bytes, sha256, uploaded_by) VALUES ('resource', 'x',"
                   " 'scjgj', 'a.pdf', 'application/pdf', %s, %s, 'test')", (len(blob), digest))
        run = db.execute("INSERT INTO quality.runs (dataset_id, trigger, state, finished_at,"
                         " score) VALUES (%s, 'manual', 'succeeded', now(), 80) RETURNING id",
                         (dataset,)).fetchone()[0]
        today = datetime.now(COUNTY_TZ).date()
        for day, dims in ((today - timedelta(days=1), (70, 90)), (today, (80, 100))):
            for dim, score in zip(("完整性", "规范性"), dims, strict=True):
                db.execute("INSERT INTO quality.daily_scores VALUES (%s, %s, 'scjgj', %s, %s,"
                           " 2, 0, %s)", (day, dataset, dim, score, run))
    with api_client(settings, datetime.now(UTC).replace(microsecond=0)) as api:
        api.person("pan-viewer", Role.VIEWER)
        api.person("pan-admin", Role.ADMIN)
        api.dataset, api.broken, api.today = dataset, broken, today
        yield api


def test_datasets_and_units_count_what_the_tables_hold(pano, database_url) -> None:
    assert pano.get("pan-admin", f"/v1/datasets/{pano.dataset}/rows",
                    params={"limit": 2}).status_code == 200
    board = pano.ok("pan-viewer", "GET", BOARD, params={"day": str(pano.today)})
    mine = next(d for d in board["datasets"] if d["id"] == pano.dataset)
    written = _one(database_url, "SELECT sum(rows_written) FROM sync_runs r JOIN datasets d"
                   " ON d.sync_id = r.sync_id WHERE d.id = %s", pano.dataset)[0]
    assert mine["rows"] == len(raw(database_url, pano.dataset)) and mine["rows"] > 0
    assert mine["rows_yesterday"] == written, "the day's loads, asked for today"
    assert [p["score"] for p in mine["quality_trend"]] == [80.0, 90.0]
    assert mine["quality_score"] == 90.0 and mine["system_name"] == "企业登记系统"
    assert (mine["calls_30d"], mine["consumers_30d"]) == (1, 1)
    unit = next(u for u in board["units"] if u["department_id"] == "scjgj")
    ids = [d["id"] for d in board["datasets"] if d["department_id"] == "scjgj"]
    assert unit["datasets"] == len(ids)
    assert unit["structured_rows"] == sum(_live(database_url, i) for i in ids)
    files = _one(database_url, "SELECT count(*), sum(size_bytes) FROM objects"
                 " WHERE department_id = 'scjgj'")
    assert (unit["objects"], unit["object_bytes"]) == files
    assert board["totals"]["objects"] == _one(database_url, "SELECT count(*) FROM objects")[0]
    assert board["totals"]["datasets"] == _one(database_url, "SELECT count(*) FROM datasets")[0]


def test_sync_health_and_production(pano, database_url) -> None:
    board = pano.ok("pan-viewer", "GET", BOARD)
    health = {s["sync_id"]: s for s in board["syncs"]}
    broken = health[pano.broken]
    assert broken["last_state"] == "failed" and broken["failures_7d"] == 1
    assert broken["last_success_at"] is None and "no_such_table" in broken["last_error"]
    good = next(s for s in board["syncs"] if s["target_table"] == "pan_firms")
    assert good["last_state"] == "succeeded" and 0 <= good["lag_s"] < 3600
    raw_layer = next(p for p in board["production"] if p["layer"] == "raw")
    expected = _one(database_url, "SELECT count(*), count(*) FILTER (WHERE state = 'failed'),"
                    " sum(rows_read), sum(rows_written), sum(rows_quarantined) FROM sync_runs"
                    " WHERE started_at >= now() - interval '7 days'")
    assert (raw_layer["runs"], raw_layer["failed"], raw_layer["rows_in"],
            raw_layer["rows_out"], raw_layer["rows_quarantined"]) == expected
    assert {p["layer"] for p in board["production"]} == {"raw", "standard", "topic"}
    csv = pano.get("pan-viewer", BOARD, params={"format": "csv", "section": "syncs"})
    assert csv.status_code == 200 and "last_success_at" in csv.text.splitlines()[0]
    assert "no_such_table" in csv.text
