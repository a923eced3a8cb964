"""Creating and dropping the private databases that tests and benchmarks work in."""

from __future__ import annotations

import time

import psycopg
from psycopg import errors, sql

from infra.db.migrate import migrate

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


def database_beside(base_url: str, name: str) -> str:
    """The URL of database `name` on the server and with the role of `base_url`."""
    return f"{base_url.rpartition('/')[0]}/{name}"



def ensure_migrated(admin_url: str, url: str, fresh: bool = False) -> None:
    """The private database at `url` (beside the platform's) created when missing, dropped
    first when `fresh`, and migrated to the current schema: the benchmarks work in these."""
    name = url.rpartition("/")[2].partition("?")[0]
    if fresh:
        drop_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                        (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(url)
