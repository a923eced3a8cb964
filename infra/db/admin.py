"""Creating and dropping the private databases that tests and benchmarks work in."""

from __future__ import annotations

import time

import psycopg
from psycopg import errors, sql

DROP_TIMEOUT_S = 30.0


def drop_database(admin_url: str, name: str, timeout_s: float = DROP_TIMEOUT_S) -> None:
    """DROP DATABASE ... WITH (FORCE), retried until the last other backend has gone.

    FORCE may only end backends of roles the admin role belongs to. TimescaleDB runs a
    scheduler in each database as the bootstrap superuser, and a stopped process's backend can
    outlive it by a moment; both leave when asked (TimescaleDB stops its scheduler on DROP
    DATABASE) but not always before PostgreSQL checks, so the drop is tried again.
    """
    deadline = time.monotonic() + timeout_s
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        while True:
            try:
                conn.execute(statement)
                return
            except (errors.InsufficientPrivilege, errors.ObjectInUse):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # a retry interval, not a wait for an event
