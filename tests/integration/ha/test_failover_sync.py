"""kill -9 of the primary's postgres while `cityops sync worker` loads a department's
PostgreSQL table into the raw layer (issue #19 item 7): after the failover the worker retries
the run, which resumes after its last committed batch (cursor and merge key in the batch's
transaction), and completes with every source row once: none lost, none twice."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from cityops.settings import Settings
from datafoundation import register
from infra.db.admin import drop_database
from simulators.departments import components
from tests.conftest import Processes
from tests.helpers import wait_for
from tests.integration.ha.conftest import HaFixture

ROWS, BATCH = 3000, 50


@pytest.fixture
def inventory(stack_settings: Settings) -> Iterator[str]:
    """The department's own PostgreSQL (城管局 部件) in the shared local cluster: the source
    is not what fails over, the platform's database is."""
    admin = stack_settings.database_admin_url.get_secret_value()
    name = f"cityops_dept_ha_{secrets.token_hex(3)}"
    url = components.create_database(admin, name)
    components.seed(url, ROWS)
    yield url
    drop_database(admin, name)


def _add_sync(url: str, secret_key: str, inventory: str) -> tuple[int, str]:
    parts, slug = urlsplit(inventory), f"cgj_ha_{secrets.token_hex(2)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('cgj', '城管局') "
                     "ON CONFLICT DO NOTHING")
        system = register.add_system(conn, slug, "城市部件管理系统", "cgj")
        source = register.add_source(
            conn, secret_key, system, f"{slug}-db", "postgresql",
            {"host": parts.hostname, "port": parts.port, "database": parts.path[1:],
             "user": parts.username}, {"password": parts.password or ""})
        sync = register.add_sync(conn, source, "components", "components", "incremental",
                                 ["id"], cursor_column="updated_at", batch_rows=BATCH)
        # each of this sync's batches a little slower, inside its own transaction, so the
        # kill lands mid-run (sync_runs is updated once per batch)
        conn.execute("CREATE OR REPLACE FUNCTION _ha_slow_batch() RETURNS trigger LANGUAGE "
                     "plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$")
        conn.execute(f"CREATE TRIGGER _ha_slow_{sync} BEFORE UPDATE ON sync_runs FOR EACH ROW"
                     f" WHEN (NEW.sync_id = {sync}) EXECUTE FUNCTION _ha_slow_batch()")
    return sync, slug


def _run(url: str, sync: int) -> tuple | None:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("SELECT id, state, rows_read, rows_written, attempt, error"
                            " FROM sync_runs WHERE sync_id = %s ORDER BY id DESC LIMIT 1",
                            (sync,)).fetchone()


def test_kill_9_of_the_primary_during_a_sync_run_loses_and_duplicates_nothing(
    ha: HaFixture, ha_settings: Settings, ha_processes: Processes, inventory: str
) -> None:
    url, cluster = ha.url, ha.cluster
    cluster.wait_synchronous(60)  # another test may have failed over just before
    sync, slug = _add_sync(url, ha_settings.secret_key.get_secret_value(), inventory)
    ha_processes.start("sync-worker", "sync", "worker")
    ha_processes.run("sync", "defer", str(sync))
    wait_for(lambda: (_run(url, sync) or (0, "", 0, 0))[3] >= 10 * BATCH, timeout_s=60,
             what="the run under way")
    old = cluster.leader()["name"]
    written_before = _run(url, sync)[3]
    killed_at = time.monotonic()
    cluster.kill_postgres(old)
    wait_for(lambda: (cluster.leader() or {"name": old})["name"] != old, timeout_s=30,
             what="the synchronous standby promoted")
    # loading again: a batch committed beyond what was there at the kill (one in flight at
    # the kill may count too: the figure is an upper bound of the standstill only then)
    wait_for(lambda: (r := _run(url, sync)) and r[3] > written_before + BATCH, timeout_s=30,
             interval_s=0.1, what="the run loading again after the failover")
    resumed_s = time.monotonic() - killed_at
    done = wait_for(lambda: (r := _run(url, sync)) and r[1] == "succeeded" and r,
                    timeout_s=45, interval_s=0.2, what="the run completed after the failover")
    completed_s = time.monotonic() - killed_at
    run_id, _, read, written, attempt, _ = done
    print(f"\nsync: loading again {resumed_s:.1f} s after the kill, run {run_id} completed"
          f" after {completed_s:.1f} s (attempt {attempt})")
    assert resumed_s < 30, f"the sync stood still {resumed_s:.1f} s"
    with psycopg.connect(inventory) as conn:
        source = [r[0] for r in conn.execute("SELECT id FROM components ORDER BY id")]
    with psycopg.connect(url) as conn:
        raw = [r[0] for r in conn.execute(f"SELECT id FROM raw_{slug}.components ORDER BY id")]
        runs = conn.execute("SELECT count(*) FROM sync_runs WHERE sync_id = %s",
                            (sync,)).fetchone()[0]
    assert raw == source, "every source row exactly once in the raw layer"
    # the same run resumed (not a second one), each row read and written once over attempts
    assert (runs, read, written) == (1, ROWS, ROWS) and attempt >= 2
    assert "retry" in ha_processes.log("sync-worker").lower()
