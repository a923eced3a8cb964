"""A first load split by primary-key ranges: each range commits its rows with its own resume
point, so a range worker killed with SIGKILL leaves whole batches and resumes after them; the
last range completes the run (key built, nothing twice, nothing missing)."""

from __future__ import annotations

import os
import signal

import psycopg

from datafoundation import raw, split
from datafoundation.runner import run_sync
from simulators.departments import enterprise_registry
from tests.helpers import wait_for
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync, source_rows


def _ranges(database_url: str, run: int) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT range_no, first_key, last_key, done_key, finished FROM "
                            "sync_ranges WHERE run_id = %s ORDER BY range_no", (run,)).fetchall()


def _done(database_url: str, run: int, number: int) -> int:
    key = _ranges(database_url, run)[number][3]
    return int(key[0]) if key else 0


def test_kill_9_of_one_range_worker_then_resume(mariadb, registry_source, database_url,
                                                processes):
    table = "firms_split"
    conn = mariadb.connect()
    enterprise_registry.seed(conn, 1000, table=table, dirty_share=0.0)
    conn.close()
    source = source_rows(mariadb, table)
    sync = add_sync(database_url, registry_source, table, batch_rows=20, split_ranges=2)
    run = run_sync(database_url, SECRET_KEY, sync, here=False)  # planned, not loaded
    ranges = _ranges(database_url, run)
    assert [(r[0], r[1], r[2]) for r in ranges] == [(0, "1", "501"), (1, "502", "1001")]
    assert split.pending(database_url, run) == [0, 1]
    with psycopg.connect(database_url, autocommit=True) as pg:
        # slow range 0's batches inside their transactions, so the kill lands mid-range
        pg.execute("CREATE FUNCTION _slow_range() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$")
        pg.execute(f"CREATE TRIGGER _slow BEFORE UPDATE ON sync_ranges FOR EACH ROW WHEN "
                   f"(NEW.run_id = {run} AND NEW.range_no = 0) EXECUTE FUNCTION _slow_range()")
    env = {**processes.env, "CITYOPS_SECRET_KEY": SECRET_KEY}
    try:
        doomed = processes.start("range-0", "sync", "range", str(sync), str(run), "0", env=env)
        # range 1 meanwhile in this process (what another worker would do)
        assert split.run_range(database_url, SECRET_KEY, sync, run, 1) is False
        wait_for(lambda: _done(database_url, run, 0) >= 60, timeout_s=30,
                 what="range 0 a few batches in")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait(10)
    finally:
        with psycopg.connect(database_url, autocommit=True) as pg:
            pg.execute("DROP TRIGGER _slow ON sync_ranges")
            pg.execute("DROP FUNCTION _slow_range()")
    ranges = _ranges(database_url, run)
    assert [r[4] for r in ranges] == [False, True]
    with psycopg.connect(database_url) as pg:
        state, read, written = pg.execute("SELECT state, rows_read, rows_written FROM "
                                          "sync_runs WHERE id = %s", (run,)).fetchone()
        loaded = pg.execute(f"SELECT count(*), count(DISTINCT id), max(id) FILTER (WHERE id "
                            f"<= 501) FROM raw_scjg_registry.{table}").fetchone()
    # range 0 committed whole batches up to its resume point, exactly what was counted
    assert state == "running" and loaded[0] == loaded[1] == read == written
    assert loaded[2] == _done(database_url, run, 0)

    assert run_sync(database_url, SECRET_KEY, sync) == run  # resumes range 0, completes
    with psycopg.connect(database_url) as pg:
        state, attempt, read, written = pg.execute(
            "SELECT state, attempt, rows_read, rows_written FROM sync_runs WHERE id = %s",
            (run,)).fetchone()
        ids = [r[0] for r in pg.execute(f"SELECT id FROM raw_scjg_registry.{table} "
                                        "ORDER BY id")]
        keyed = raw.has_key(pg, "raw_scjg_registry", table)
        cursor = pg.execute("SELECT cursor_value FROM sync_state WHERE sync_id = %s",
                            (sync,)).fetchone()[0]
    assert (state, attempt) == ("succeeded", 2) and read == written == len(source)
    assert ids == sorted(source) and keyed  # every row once, the key built at the end
    assert cursor is not None  # the next incremental run starts at the high-water mark
