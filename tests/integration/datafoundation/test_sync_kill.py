"""Exactly-once effect: a `cityops sync run` process killed with SIGKILL mid-run leaves only
whole batches, and the next run resumes right after them: no duplicates, no gaps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg

from simulators.departments import enterprise_registry
from tests.conftest import REPO
from tests.helpers import wait_for
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync, source_rows


def _progress(database_url: str, sync: int) -> tuple:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT id, state, rows_read, rows_written, attempt FROM sync_runs "
                            "WHERE sync_id = %s ORDER BY id DESC LIMIT 1", (sync,)).fetchone()


def test_kill_9_mid_run_then_resume(mariadb, registry_source, database_url, processes):
    table = "firms_kill"
    conn = mariadb.connect()
    enterprise_registry.seed(conn, 1000, table=table, dirty_share=0.0)
    conn.close()
    sync = add_sync(database_url, registry_source, table, mode="full", batch_rows=20)
    with psycopg.connect(database_url, autocommit=True) as pg:
        # slow this sync's batches down inside their own transactions, so the kill lands mid-run
        pg.execute("CREATE FUNCTION _slow_batch() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN PERFORM pg_sleep(0.03); RETURN NEW; END $$")
        pg.execute(f"CREATE TRIGGER _slow BEFORE UPDATE ON sync_runs FOR EACH ROW WHEN "
                   f"(NEW.sync_id = {sync}) EXECUTE FUNCTION _slow_batch()")
    env = {**processes.env, "CITYOPS_SECRET_KEY": SECRET_KEY}
    try:
        worker = processes.start("sync", "sync", "run", str(sync), env=env)
        wait_for(lambda: (_progress(database_url, sync) or (0, "", 0))[2] >= 200,
                 timeout_s=30, what="a few batches committed")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        with psycopg.connect(database_url, autocommit=True) as pg:
            pg.execute("DROP TRIGGER _slow ON sync_runs")
            pg.execute("DROP FUNCTION _slow_batch()")
    run_id, state, read, written, _ = _progress(database_url, sync)
    assert state == "running" and 200 <= read < len(source_rows(mariadb, table))
    with psycopg.connect(database_url) as pg:
        in_raw = pg.execute(f"SELECT count(*) FROM raw_scjg_registry.{table}").fetchone()[0]
    # what the killed run committed is exactly what it counted: whole batches only
    assert in_raw == written == read and read % 20 == 0

    result = subprocess.run([sys.executable, "-m", "cli", "sync", "run", str(sync)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    source = source_rows(mariadb, table)
    rid, state, read, written, attempt = _progress(database_url, sync)
    # the same run resumed: every source row read exactly once over both attempts
    assert (rid, state, attempt) == (run_id, "succeeded", 2)
    assert read == written == len(source)
    with psycopg.connect(database_url) as pg:
        ids = [r[0] for r in pg.execute(f"SELECT id FROM raw_scjg_registry.{table} "
                                        "WHERE _deleted_at IS NULL ORDER BY id").fetchall()]
    assert ids == sorted(source)
