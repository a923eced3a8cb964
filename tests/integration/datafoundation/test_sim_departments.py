"""`cityops sim departments` (run by `cityops demo`): a real MariaDB registry, registered in
the platform with its password encrypted, changing over time so incremental syncs find work;
stopped with its process."""

from __future__ import annotations

from pathlib import Path

import psycopg

from datafoundation.runner import run_sync
from tests.helpers import wait_for
from tests.integration.datafoundation.conftest import SECRET_KEY


def _sync_id(url: str) -> int | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT s.id FROM syncs s JOIN sources so ON so.id = s.source_id "
                           "JOIN systems sy ON sy.id = so.system_id "
                           "WHERE sy.slug = 'scjg_qydj'").fetchone()
    return row[0] if row else None


def _read(url: str, run: int) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT rows_read FROM sync_runs WHERE id = %s", (run,)).fetchone()[0]


def test_departments_simulator_registers_and_changes(database_url, processes):
    env = {**processes.env, "CITYOPS_SECRET_KEY": SECRET_KEY}
    sim = processes.start("departments", "sim", "departments", "--firms", "60",
                          "--mutate-every-s", "1", env=env)
    sync = wait_for(lambda: _sync_id(database_url), timeout_s=60, what="the registry registered")
    first = run_sync(database_url, SECRET_KEY, sync)
    assert _read(database_url, first) >= 60
    # the registry keeps changing: a later incremental run finds new and updated firms
    wait_for(lambda: _read(database_url, run_sync(database_url, SECRET_KEY, sync)) > 0,
             timeout_s=30, interval_s=0.5, what="changes picked up by an incremental run")
    assert "enterprise registry (MariaDB)" in processes.log("departments")
    sim.terminate()
    assert sim.wait(30) == 0
    # its MariaDB went with it
    pid_file = Path(processes.env["CITYOPS_STATE_DIR"]) / "departments/mariadb/mysqld.pid"
    wait_for(lambda: not pid_file.exists(), timeout_s=30, what="mariadbd stopped")
