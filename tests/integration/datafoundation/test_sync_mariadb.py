"""数据汇聚 from a real MariaDB into the raw layer: full load, incremental with inserts,
updates and deletes, schema drift, and what the data bureau sees when a source misbehaves."""

from __future__ import annotations

import re

import psycopg
import pytest

from cityops.errors import SourceError, SourceUnavailable, SyncRejected
from datafoundation.runner import run_sync
from simulators.departments import enterprise_registry
from tests.integration.datafoundation.conftest import (
    SECRET_KEY,
    add_sync,
    raw_rows,
    source_rows,
)


def _run(database_url: str, sync_id: int) -> int:
    return run_sync(database_url, SECRET_KEY, sync_id)


def _run_row(database_url: str, run_id: int) -> tuple:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT state, rows_read, rows_written, rows_deleted, drift, error "
                            "FROM sync_runs WHERE id = %s", (run_id,)).fetchone()


def test_full_then_incremental_with_inserts_updates_deletes(
        mariadb, registry_source, database_url, firms_table):
    sync = add_sync(database_url, registry_source, firms_table, deletes="compare",
                    batch_rows=70)
    first = _run(database_url, sync)
    source = source_rows(mariadb, firms_table)
    loaded = raw_rows(database_url, firms_table)
    assert {k: v[:2] for k, v in loaded.items()} == source  # every row, every value
    assert _run_row(database_url, first)[:3] == ("succeeded", len(source), len(source))

    conn = mariadb.connect()
    touched = enterprise_registry.mutate(conn, inserts=4, updates=6, deletes=3, soft_deletes=2,
                                         seed_value=7, table=firms_table)
    conn.close()
    second = _run(database_url, sync)
    state, read, written, deleted, _drift, _err = _run_row(database_url, second)
    # only the changed rows are read again: 4 new, 6 updated, 2 marked deleted
    assert (state, read, written, deleted) == ("succeeded", 12, 12, 3)
    after = raw_rows(database_url, firms_table)
    now_source = source_rows(mariadb, firms_table)
    for fid in touched["inserted"] + touched["updated"]:
        assert after[fid][:2] == now_source[fid]
    # rows deleted at the source stay in the raw layer, marked: nothing synced is lost
    for fid in touched["deleted"]:
        assert fid in after and after[fid][2] is True
    assert sum(1 for v in after.values() if not v[2]) == len(now_source)


def test_soft_delete_column_marks_rows(mariadb, registry_source, database_url, firms_table):
    sync = add_sync(database_url, registry_source, firms_table, deletes="soft",
                    soft_delete_column="deleted")
    _run(database_url, sync)
    conn = mariadb.connect()
    touched = enterprise_registry.mutate(conn, inserts=0, updates=0, deletes=0, soft_deletes=3,
                                         seed_value=3, table=firms_table)
    conn.close()
    _run(database_url, sync)
    marked = raw_rows(database_url, firms_table, "_deleted_at IS NOT NULL")
    assert sorted(marked) == sorted(touched["soft_deleted"])


def test_schema_drift_evolves_or_stops(mariadb, registry_source, database_url, firms_table):
    evolving = add_sync(database_url, registry_source, firms_table)
    _run(database_url, evolving)
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"ALTER TABLE `{firms_table}` ADD COLUMN credit_grade VARCHAR(2)")
        cur.execute(f"ALTER TABLE `{firms_table}` MODIFY established VARCHAR(20) NOT NULL")
        cur.execute(f"UPDATE `{firms_table}` SET credit_grade = 'A', established = '2001年3月', "
                    "updated_at = NOW(6) WHERE id = 1")
        cur.execute(f"ALTER TABLE `{firms_table}` DROP COLUMN legal_person")
    conn.close()
    run = _run(database_url, evolving)
    drift = _run_row(database_url, run)[4]
    assert drift == {"added": ["credit_grade"], "dropped": ["legal_person"],
                     "retyped": [["established", "date", "text"]]}
    with psycopg.connect(database_url) as pg:
        one = pg.execute(f"SELECT credit_grade, established, legal_person FROM "
                         f"raw_scjg_registry.{firms_table} WHERE id = 1").fetchone()
        kept = pg.execute(f"SELECT count(*) FROM raw_scjg_registry.{firms_table} "
                          "WHERE legal_person IS NOT NULL").fetchone()[0]
    # the new column arrived, the retyped value landed, the dropped column's history is kept
    assert one[0] == "A" and one[1] == "2001年3月" and one[2] is not None
    assert kept == 300 + 3  # every seeded row (and duplicates) still has its legal_person

    frozen = add_sync(database_url, registry_source, firms_table, contract="freeze",
                      target=f"{firms_table}_frozen")
    _run(database_url, frozen)
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"ALTER TABLE `{firms_table}` ADD COLUMN licence VARCHAR(20)")
    conn.close()
    with pytest.raises(SyncRejected, match=rf"table {firms_table}: schema drift.*licence"):
        _run(database_url, frozen)
    with psycopg.connect(database_url) as pg:
        flagged = pg.execute("SELECT flagged FROM syncs WHERE id = %s", (frozen,)).fetchone()[0]
    assert "licence" in flagged


def test_bad_input_fails_with_clear_errors(mariadb, registry_source, database_url,
                                           firms_table):
    missing = add_sync(database_url, registry_source, "no_such_table")
    with pytest.raises(SourceError, match="source registry-db: table no_such_table does not"):
        _run(database_url, missing)

    # a sync keyed on the USCC, which the registry holds twice for duplicated firms: the
    # repeats are set aside by name, the rest loads (test_sync_quarantine.py has the rest)
    dup = add_sync(database_url, registry_source, firms_table, mode="full", key="uscc",
                   target=f"{firms_table}_by_uscc")
    run = _run(database_url, dup)
    with psycopg.connect(database_url) as pg:
        reasons = [r[0] for r in pg.execute("SELECT reason FROM sync_quarantine WHERE "
                                            "run_id = %s", (run,))]
    assert reasons and all(re.match(r"key uscc='[0-9A-Z]{18}' appears twice", r)
                           for r in reasons)
    assert _run_row(database_url, run)[0] == "succeeded"


def test_wrong_password_and_unreachable_never_show_the_secret(
        mariadb, registry_source, database_url, firms_table):
    from datafoundation import register

    sync = add_sync(database_url, registry_source, firms_table)
    wrong = "Wr0ng-" + mariadb.password[:6]
    with psycopg.connect(database_url, autocommit=True) as pg:
        stored = pg.execute("SELECT secret FROM sources WHERE id = %s",
                            (registry_source,)).fetchone()[0]
        assert mariadb.password.encode() not in bytes(stored)  # encrypted at rest
        register.set_credentials(pg, SECRET_KEY, registry_source, {"password": wrong})
        try:
            with pytest.raises(SourceError, match=r"source registry-db: cannot connect.*Access "
                                                  "denied") as refused:
                _run(database_url, sync)
            assert wrong not in str(refused.value)
            pg.execute("UPDATE sources SET settings = settings || '{\"port\": 1}' WHERE id = %s",
                       (registry_source,))
            register.set_credentials(pg, SECRET_KEY, registry_source,
                                     {"password": mariadb.password})
            with pytest.raises(SourceUnavailable) as down:
                _run(database_url, sync)
            assert down.value.retryable
        finally:
            pg.execute("UPDATE sources SET settings = settings || jsonb_build_object('port', "
                       "%s::int) WHERE id = %s", (mariadb.port, registry_source))
            register.set_credentials(pg, SECRET_KEY, registry_source,
                                     {"password": mariadb.password})
        errors = pg.execute("SELECT error FROM sync_runs WHERE sync_id = %s", (sync,)).fetchall()
    assert all(mariadb.password not in e[0] and wrong not in e[0] for e in errors)
    # back up: the interrupted run resumes (attempt 3) and loads everything
    run = _run(database_url, sync)
    assert _run_row(database_url, run)[:2] == ("succeeded", 303)
