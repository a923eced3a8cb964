"""An ingest worker runs below the readers' CPU priority, and so do its database sessions
(ingestion/priority.py, issue #21); nobody else's session is touched."""

from __future__ import annotations

import os

import psycopg

from tests.helpers import wait_for


def _backend_nice(url: str) -> dict[int, int]:
    """Every client backend of this database but ours: pid -> nice value."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, get_backend_priority(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()").fetchall()
    return {pid: nice for pid, nice in rows if nice is not None}


def test_worker_and_its_sessions_run_at_the_configured_nice(processes, database_url):
    before = _backend_nice(database_url)
    env = dict(processes.env, CITYOPS_INGEST_NICE="12")
    worker = processes.start("ingest", "ingest", env=env)

    def niced() -> dict[int, int]:
        assert worker.poll() is None, processes.log("ingest")
        return {pid: n for pid, n in _backend_nice(database_url).items()
                if pid not in before and n == 12}

    # the sink, the jobs, the registry's listener: more than one of its sessions
    wait_for(lambda: len(niced()) >= 2, timeout_s=30, what="the worker's sessions at nice 12")
    assert os.getpriority(os.PRIO_PROCESS, worker.pid) == 12
    # sessions opened before it (other tests', like the API's) keep their priority
    after = _backend_nice(database_url)
    assert {pid: after[pid] for pid in before if pid in after} == {
        pid: nice for pid, nice in before.items() if pid in after}


async def test_a_session_is_niced_once_and_never_raised_again(database_url):
    from ingestion import priority

    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert await priority.lower_session_priority(conn, 7)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        cur = await conn.execute("SELECT get_backend_priority(pg_backend_pid())")
        assert (await cur.fetchone())[0] == 7
        # a role may only lower its own backend's priority: asking for more changes nothing
        await priority.lower_session_priority(conn, 3)
        cur = await conn.execute("SELECT get_backend_priority(pg_backend_pid())")
        assert (await cur.fetchone())[0] == 7
