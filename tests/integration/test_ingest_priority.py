"""An ingest worker runs below the readers' CPU priority (ingestion/priority.py, issue #21);
its database sessions keep theirs: a backend niced while it holds a lock the readers wait
for makes them wait longer (measured: docs/ingestion.md, "Priority below the readers")."""

from __future__ import annotations

import os

import psycopg

from tests.helpers import wait_for


def _backends(url: str) -> set[int]:
    """Every client backend of this database but ours."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchall()
    return {pid for (pid,) in rows}


def test_worker_runs_at_the_configured_nice_and_its_sessions_at_theirs(processes,
                                                                       database_url):
    before = _backends(database_url)
    env = dict(processes.env, CITYOPS_INGEST_NICE="12")
    worker = processes.start("ingest", "ingest", env=env)

    def new_backends() -> set[int]:
        assert worker.poll() is None, processes.log("ingest")
        return _backends(database_url) - before

    # the sink, the jobs, the registry's listener: more than one of its sessions
    wait_for(lambda: len(new_backends()) >= 2, timeout_s=30, what="the worker's sessions")
    assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 12
    niced = {}
    for pid in new_backends():
        try:
            nice = os.getpriority(os.PRIO_PROCESS, pid)
        except ProcessLookupError:  # another test's session, ended meanwhile
            continue
        if nice != 0:
            niced[pid] = nice
    assert niced == {}, f"database backends niced: {niced}"
