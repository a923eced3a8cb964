"""Ingestion waits behind the readers for a core (issue #21).

On a machine that runs the API and ingestion side by side (a county's single server, or this
2-core one), a burst of decoding and COPY takes the cores for tens of milliseconds, and a
big screen's request that arrives then waits that long: `make bench-api` measured the API's
p99 at 8.5 ms idle and 41.6 ms while 83,000 readings/s were ingested. Ingestion does not need
low latency (the broker holds what it has not taken, commits come in batches), the readers
do. So a worker lowers its own CPU priority at start (`CITYOPS_INGEST_NICE`, default 10:
a nice-0 task runs about ten times as often as a nice-10 one when both want a core, and
preempts it on waking) and the priority of the database sessions it opens: their work (COPY,
the latest-value upsert, the rollups) is ingestion's work done in PostgreSQL's processes.

A session's priority is lowered with the `prioritize` extension (Debian's
postgresql-15-prioritize; created by the superuser with TimescaleDB and PostGIS): any role
may raise the nice value of its own backend, never lower it. Where the extension is absent
(a managed database), the sessions keep their priority and the worker says so once.
A backend's nice value cannot be lowered again, so only ingestion's own connections are
given one: the API's connections are never niced.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg

log = logging.getLogger(__name__)
_session_nice = 0  # set once at a worker's start (`lower_worker_priority`)
_warned = False


def lower_worker_priority(nice: int) -> int:
    """This process (and the threads it starts later) at `nice`, never higher in priority
    than it already is; the nice value it runs at. Called first thing at a worker's start:
    on Linux the value is per thread, inherited by threads created afterwards."""
    global _session_nice
    _session_nice = max(nice, 0)
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if _session_nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, _session_nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


async def connect(database_url: str, **kwargs: Any) -> psycopg.AsyncConnection:
    """A connection for ingestion's work: its backend at the worker's nice value."""
    conn = await psycopg.AsyncConnection.connect(database_url, **kwargs)
    if _session_nice > 0:
        try:
            await lower_session_priority(conn, _session_nice)
        except BaseException:
            await conn.close()
            raise
    return conn


async def lower_session_priority(conn: psycopg.AsyncConnection, nice: int) -> bool:
    """Whether the session's backend now runs at `nice` (False: no `prioritize` here). The
    connection is left as it was: outside a transaction."""
    global _warned
    cur = await conn.execute(
        "SELECT to_regprocedure('set_backend_priority(integer,integer)') IS NOT NULL")
    row = await cur.fetchone()
    done = bool(row and row[0])
    if done:
        await conn.execute("SELECT set_backend_priority(pg_backend_pid(), %s)", (nice,))
    if not conn.autocommit:
        await conn.commit()
    if not done and not _warned:
        _warned = True
        log.info("ingest: the database has no `prioritize` extension: ingestion's sessions run"
                 " at the readers' CPU priority (docs/ingestion.md)")
    return done
