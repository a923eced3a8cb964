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

from cityops.errors import Conflict

_TRY = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
_WAIT = "SELECT pg_advisory_lock(hashtextextended(%s, 0))"
# longer than any one job's cloud waits (each at most 300 s, a few in a row): a job still
# holding a name after this is stuck, and the waiting job fails naming it instead of
# waiting (and heartbeating) forever
WAIT_LIMIT_S = 1200


def lock_key(cloud: str, project: str, kind: str, name: str) -> str:
    return f"cloud:{cloud}:{project}:{kind}:{name}"


@contextlib.contextmanager
def resources_locked(database_url: str, keys: list[str],
                     on_wait: Callable[[str], None] | None = None,
                     wait_limit_s: float = WAIT_LIMIT_S) -> Iterator[None]:
    """Hold every key's lock (taken in sorted order, so two jobs wanting the same pair of
    keys cannot deadlock); `on_wait` hears of each key another job holds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = '{int(wait_limit_s * 1000)}ms'")
        for key in sorted(set(keys)):
            if not conn.execute(_TRY, (key,)).fetchone()[0]:
                if on_wait is not None:
                    on_wait(key)
                try:
                    conn.execute(_WAIT, (key,))
                except psycopg.errors.LockNotAvailable as err:
                    raise Conflict(f"another job has held {key} for over {wait_limit_s:g} s:"
                                   " try again when it has finished") from err
        yield
        # closing the connection releases every advisory lock it holds
