"""One job at a time per cloud resource name: PostgreSQL advisory locks.

OpenStack lets two servers (or volumes, routers...) share a name; CityOps names things by
name. Two identical creates running at once would both find nothing and both create, so
every job that looks a resource up by name and may change it holds a lock keyed by
cloud + project + kind + name for the whole look-up-then-act step. The lock lives on its
own database connection: a worker killed mid-job loses the connection, and with it the lock,
so a stalled job's retry is never blocked by the attempt it replaces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import psycopg

_TRY = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_WAIT = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"


def lock_key(cloud: str, project: str, kind: str, name: str) -> str:
    return f"cloud:{cloud}:{project}:{kind}:{name}"


@contextlib.contextmanager
def resources_locked(database_url: str, keys: list[str],
                     on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold every key's lock (taken in sorted order, so two jobs wanting the same pair of
    keys cannot deadlock); `on_wait` hears of each key another job holds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        for key in sorted(set(keys)):
            if not conn.execute(_TRY, (key,)).fetchone()[0]:
                if on_wait is not None:
                    on_wait(key)
                conn.execute(_WAIT, (key,))
        yield
        # closing the connection releases every advisory lock it holds
