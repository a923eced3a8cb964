"""Audit you can prove (issue #19 item 4), in a database of its own (retention removes rows,
and a superuser edits one): the application's role cannot change or remove audit rows,
concurrent writers keep one chain, `cityops audit verify` names the first edited row, the
retention keeps 180 days at least and re-anchors the chain, and the audit administrator's
export is itself audited."""

from __future__ import annotations

import csv
import io
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.audit_chain import apply_retention, verify
from api.main import create_app
from cityops.settings import Settings
from infra.db.admin import drop_database
from infra.db.migrate import migrate
from infra.local.postgres import _psql
from tests.api_kit import api_settings, bearer, ok
from tests.conftest import REPO, BrokerFixture, _with_database


@pytest.fixture(scope="module")
def audit_db(settings: Settings) -> Iterator[str]:
    admin = settings.database_admin_url.get_secret_value()
    name = f"cityops_audit_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        # FILE_COPY: a few seconds; the default strategy writes the template to the WAL
        conn.execute(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
    url = _with_database(settings.database_url.get_secret_value(), name)
    migrate(url)
    yield url
    drop_database(admin, name)


def _write(url: str, actor: str, n: int = 1, age_days: int = 0) -> None:
    with psycopg.connect(url) as conn:
        for _ in range(n):
            conn.execute("INSERT INTO audit_log (time, actor, actor_kind, action, outcome,"
                         " detail) VALUES (now() - make_interval(days => %s), %s, 'user',"
                         " 'test.write', 'ok', '{\"k\": \"值\"}')", (age_days, actor))


def _cli_verify(url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    env |= {"CITYOPS_ENV_FILE": "/nonexistent", "CITYOPS_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "cli", "audit", "verify"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def test_the_application_role_cannot_change_or_remove_audit_rows(audit_db: str) -> None:
    _write(audit_db, "t-first")
    for sql in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log",
                "TRUNCATE audit_log", "SELECT audit_apply_retention(30)"):
        with psycopg.connect(audit_db) as conn, pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
        assert ("permission denied" in str(caught.value)
                or "at least 180 days" in str(caught.value)), (sql, caught.value)


def test_concurrent_writers_keep_one_chain_and_an_edit_is_found(audit_db: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: _write(audit_db, f"t-writer-{n}", 25), range(4)))
    verdict = verify(audit_db)
    assert verdict.ok and verdict.checked >= 100, verdict
    with psycopg.connect(audit_db) as conn:
        row_id, seq = conn.execute("SELECT id, seq FROM audit_log WHERE actor = 't-writer-2'"
                                   " ORDER BY seq LIMIT 1").fetchone()
    # a superuser can switch the trigger off: the chain still tells
    name = audit_db.rpartition("/")[2]
    _psql(name, "SET session_replication_role = replica;"
                f" UPDATE audit_log SET actor = 'mallory' WHERE id = {row_id};", "edit a row")
    done = _cli_verify(audit_db)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"audit row id {row_id} (seq {seq})" in done.stdout and "edited" in done.stdout
    _psql(name, "SET session_replication_role = replica;"
                f" UPDATE audit_log SET actor = 't-writer-2' WHERE id = {row_id};", "undo it")
    assert _cli_verify(audit_db).returncode == 0


def test_retention_removes_only_old_rows_records_it_and_reanchors(audit_db: str) -> None:
    with psycopg.connect(audit_db) as conn:
        first_seq = conn.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    # the rows so far become a year old (a superuser rewrites them and their chain), standing
    # in for a year of history
    _psql(audit_db.rpartition("/")[2], "SET session_replication_role = replica;"
          " UPDATE audit_log SET time = time - interval '400 days';"
          " DO $$ DECLARE r record; prev text; BEGIN"
          "  SELECT prev_hash INTO prev FROM audit_anchors ORDER BY id DESC LIMIT 1;"
          "  FOR r IN SELECT id FROM audit_log ORDER BY seq LOOP"
          "   UPDATE audit_log a SET prev_hash = prev WHERE id = r.id;"
          "   UPDATE audit_log a SET hash = audit_row_hash(prev, a) WHERE id = r.id"
          "    RETURNING hash INTO prev;"
          "  END LOOP; UPDATE audit_chain SET hash = prev; END $$;", "age the rows")
    assert verify(audit_db).ok
    _write(audit_db, "t-recent", 3)
    assert apply_retention(audit_db, 180) == first_seq
    verdict = verify(audit_db)
    assert verdict.ok, verdict
    with psycopg.connect(audit_db) as conn:
        actors = [r[0] for r in conn.execute("SELECT actor FROM audit_log ORDER BY seq")]
        anchor = conn.execute("SELECT first_seq, removed_rows FROM audit_anchors"
                              " ORDER BY id DESC LIMIT 1").fetchone()
        record = conn.execute("SELECT detail FROM audit_log WHERE action ="
                              " 'audit.retention'").fetchone()[0]
    assert actors == ["t-recent"] * 3 + ["retention"]
    assert anchor == (first_seq + 1, first_seq) and record["removed_rows"] == first_seq


def test_the_audit_administrator_exports_and_the_export_is_audited(
        settings: Settings, broker: BrokerFixture) -> None:
    with TestClient(create_app(api_settings(settings, broker))) as client:
        assert client.get("/v1/audit/export", headers=bearer(settings, "admin")
                          ).status_code == 403
        auditor = bearer(settings, "audit_admin", "t-exporter")
        res = client.get("/v1/audit/export", headers=auditor, params={"format": "csv"})
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(res.text)))
        assert rows and {"seq", "hash", "prev_hash", "actor"} <= set(rows[0])
        lines = ok(client.get("/v1/audit", headers=auditor, params={"actor": "t-exporter"}))
        assert [i["action"] for i in lines["items"]] == ["audit.export"]
        res = client.get("/v1/audit/export", headers=auditor,
                         params={"format": "json", "actor": "t-exporter"})
        exported = [orjson.loads(line) for line in res.text.splitlines()]
        assert [e["action"] for e in exported] == ["audit.export", "audit.export"][:len(
            exported)] and exported[0]["detail"]["format"] == "csv"
