"""Binlog capture from the registry's MariaDB: inserts, updates and deletes reach the raw
layer within seconds, and a follower restarted later resumes at its committed position."""

from __future__ import annotations

import threading
import time

import psycopg

from datafoundation.cdc import follow
from datafoundation.runner import run_sync
from tests.helpers import wait_for
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync


def _raw(url: str, table: str) -> dict[int, tuple]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            f"SELECT id, status, _deleted_at IS NOT NULL FROM raw_scjg_registry.{table}")}


def _start(url: str, sync: int) -> tuple[threading.Thread, threading.Event, list]:
    stop, errors = threading.Event(), []

    def body() -> None:
        try:
            follow(url, SECRET_KEY, sync, stop)
        except Exception as err:  # reported by the test
            errors.append(err)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, stop, errors


def test_binlog_changes_reach_the_raw_layer(mariadb, registry_source, database_url,
                                            firms_table):
    sync = add_sync(database_url, registry_source, firms_table, mode="cdc",
                    cursor_column="updated_at")
    thread, stop, errors = _start(database_url, sync)
    wait_for(lambda: _position(database_url, sync), what="the follower's start position")
    run_sync(database_url, SECRET_KEY, sync)  # the initial load, after the follower started
    conn = mariadb.connect()
    with conn.cursor() as cur:
        started = time.monotonic()
        cur.execute(f"UPDATE `{firms_table}` SET status = 'CDC', updated_at = NOW(6) "
                    "WHERE id = 7")
        cur.execute(f"DELETE FROM `{firms_table}` WHERE id = 8")
        cur.execute(f"INSERT INTO `{firms_table}` (uscc, name, address, industry_code, "
                    "registered_capital, status, legal_person, phone, established, deleted, "
                    "updated_at) VALUES ('91340621MA2N000001', '新企业', '濉溪镇', 'C1311', "
                    "100.00, '存续', '张三', '0561-1', '2026-01-01', 0, NOW(6))")
        new_id = cur.lastrowid
    wait_for(lambda: _raw(database_url, firms_table).get(new_id) == ("存续", False)
             and _raw(database_url, firms_table)[7] == ("CDC", False)
             and _raw(database_url, firms_table)[8][1] is True,
             timeout_s=15, what="the three changes in the raw layer")
    latency = time.monotonic() - started
    stop.set()
    thread.join(15)
    assert not errors and latency < 5, (errors, latency)

    # stopped, the source changes, a new follower resumes at the saved position (not from
    # the log's start: row 7's change is not applied a second time)
    applied_7 = _synced_at(database_url, firms_table, 7)
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{firms_table}` SET status = 'LATER' WHERE id = 9")
    thread, stop, errors = _start(database_url, sync)
    wait_for(lambda: _raw(database_url, firms_table)[9][0] == "LATER", timeout_s=15,
             what="the change made while no follower ran")
    assert _synced_at(database_url, firms_table, 7) == applied_7
    stop.set()
    thread.join(15)
    conn.close()
    assert not errors


def _position(url: str, sync: int):
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT cursor_key FROM sync_state WHERE sync_id = %s",
                           (sync,)).fetchone()
    return row and row[0] and row[0].get("binlog")


def _synced_at(url: str, table: str, firm: int):
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT _synced_at FROM raw_scjg_registry.{table} WHERE id = %s",
                            (firm,)).fetchone()[0]


def test_sync_worker_supervises_the_followers(mariadb, registry_source, database_url,
                                              firms_table, processes):
    """`cityops sync worker` starts a follower for each cdc sync, and restarts one that failed
    (here: its source's port closed at first, then opened)."""
    with psycopg.connect(database_url, autocommit=True) as pg:
        broken = pg.execute(
            "INSERT INTO sources (system_id, name, kind, settings, secret) SELECT system_id, "
            "'registry-binlog-w', kind, settings || '{\"port\": 1}', secret FROM sources "
            "WHERE id = %s RETURNING id", (registry_source,)).fetchone()[0]
    sync = add_sync(database_url, broken, firms_table, mode="cdc", cursor_column=None,
                    target=f"{firms_table}_w")
    worker = processes.start("cdc-worker", "sync", "worker",
                             env={**processes.env, "CITYOPS_SECRET_KEY": SECRET_KEY})
    wait_for(lambda: "follower failed" in processes.log("cdc-worker"), timeout_s=30,
             what="the follower failing on the closed port")
    with psycopg.connect(database_url, autocommit=True) as pg:
        pg.execute("UPDATE sources SET settings = settings || jsonb_build_object('port', "
                   "%s::int) WHERE id = %s", (mariadb.port, broken))
    wait_for(lambda: _position(database_url, sync), timeout_s=30,
             what="the follower restarted and at the binlog's end")
    conn = mariadb.connect()
    with conn.cursor() as cur:
        cur.execute(f"UPDATE `{firms_table}` SET status = 'WORKER', updated_at = NOW(6) "
                    "WHERE id = 3")
    conn.commit()
    conn.close()
    wait_for(lambda: _raw(database_url, f"{firms_table}_w").get(3, (None,))[0] == "WORKER",
             timeout_s=20, what="the change captured by the supervised follower")
    assert worker.poll() is None and mariadb.password not in processes.log("cdc-worker")
    with psycopg.connect(database_url, autocommit=True) as pg:  # not followed by later tests
        pg.execute("UPDATE syncs SET enabled = false WHERE id = %s", (sync,))
