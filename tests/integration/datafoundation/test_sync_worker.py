"""Syncs as jobs on the queue `sync`: two `cityops sync worker` processes share them, an
unreachable source is retried with backoff until it is back, cron schedules fire."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import psycopg

from datafoundation.jobs import due_syncs
from simulators.departments import enterprise_registry
from tests.conftest import REPO
from tests.helpers import wait_for
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync, source_rows


def _runs(database_url: str, sync: int) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT state, attempt, rows_read, error FROM sync_runs "
                            "WHERE sync_id = %s ORDER BY id", (sync,)).fetchall()


def _defer(env: dict, sync: int) -> None:
    result = subprocess.run([sys.executable, "-m", "cli", "sync", "defer", str(sync)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0 and "queued as job" in result.stdout, result.stderr


def test_two_workers_share_syncs_and_a_source_down_is_retried(
        mariadb, registry_source, database_url, processes):
    env = {**processes.env, "CITYOPS_SECRET_KEY": SECRET_KEY}
    tables = ["firms_w1", "firms_w2", "firms_w3"]
    conn = mariadb.connect()
    for table in tables:
        enterprise_registry.seed(conn, 120, table=table, dirty_share=0.0)
    conn.close()
    # the first is a first load split into two key ranges: a job per range, both workers
    syncs = [add_sync(database_url, registry_source, t, split_ranges=2 if t == tables[0] else 1)
             for t in tables]
    # the third sync's source is a copy of the registry pointing at a closed port for now
    with psycopg.connect(database_url, autocommit=True) as pg:
        down = pg.execute(
            "INSERT INTO sources (system_id, name, kind, settings, secret) SELECT system_id, "
            "'registry-db-2', kind, settings || '{\"port\": 1}', secret FROM sources "
            "WHERE id = %s RETURNING id", (registry_source,)).fetchone()[0]
        pg.execute("UPDATE syncs SET source_id = %s WHERE id = %s", (down, syncs[2]))
    processes.start("worker-a", "sync", "worker", env=env)
    processes.start("worker-b", "sync", "worker", env=env)
    for sync in syncs:
        _defer(env, sync)
    for sync, table in zip(syncs[:2], tables, strict=False):
        wait_for(lambda s=sync: _runs(database_url, s) and _runs(database_url, s)[-1][0]
                 == "succeeded", timeout_s=30, what=f"sync {sync} done by a worker")
        assert _runs(database_url, sync)[-1][2] == len(source_rows(mariadb, table))
    with psycopg.connect(database_url) as pg:
        ranges = pg.execute("SELECT r.range_no, r.finished FROM sync_ranges r JOIN sync_runs u "
                            "ON u.id = r.run_id WHERE u.sync_id = %s ORDER BY 1",
                            (syncs[0],)).fetchall()
        ids = pg.execute(f"SELECT count(*), count(DISTINCT id) FROM raw_scjg_registry."
                         f"{tables[0]}").fetchone()
    assert ranges == [(0, True), (1, True)]
    assert ids == (len(source_rows(mariadb, tables[0])),) * 2
    wait_for(lambda: _runs(database_url, syncs[2]) and _runs(database_url, syncs[2])[-1][1] >= 2,
             timeout_s=30, what="the unreachable source retried")
    assert "source_unavailable: source registry-db-2: cannot connect" in \
        _runs(database_url, syncs[2])[-1][3]
    with psycopg.connect(database_url, autocommit=True) as pg:
        pg.execute("UPDATE sources SET settings = settings || jsonb_build_object('port', "
                   "%s::int) WHERE id = %s", (mariadb.port, down))
    wait_for(lambda: _runs(database_url, syncs[2])[-1][0] == "succeeded", timeout_s=40,
             what="the source back and the retry through")
    runs = _runs(database_url, syncs[2])
    assert len(runs) == 1 and runs[0][2] == 120 + 1  # one run, resumed; every row once
    logs = processes.log("worker-a") + processes.log("worker-b")
    assert mariadb.password not in logs


def test_cron_schedules_fire_in_their_minute(registry_source, database_url, firms_table):
    every5 = add_sync(database_url, registry_source, firms_table, schedule="*/5 * * * *")
    hourly = add_sync(database_url, registry_source, firms_table, schedule="0 * * * *",
                      target=f"{firms_table}_h")
    broken = add_sync(database_url, registry_source, firms_table, schedule="every day",
                      target=f"{firms_table}_b")
    with psycopg.connect(database_url) as conn:
        at_1205 = due_syncs(conn, datetime(2026, 12, 2, 12, 5, 7))
        at_1300 = due_syncs(conn, datetime(2026, 12, 2, 13, 0, 30))
        at_1301 = due_syncs(conn, datetime(2026, 12, 2, 13, 1, 0))
    assert every5 in at_1205 and hourly not in at_1205
    assert every5 in at_1300 and hourly in at_1300
    assert every5 not in at_1301 and hourly not in at_1301
    assert broken not in at_1205 + at_1300 + at_1301
