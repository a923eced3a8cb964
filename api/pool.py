"""The API's database pool, back at once when the database is (issue #22 item 11).

psycopg_pool's defaults kept the API failing for up to 45 s after a PostgreSQL outage:
connections that died with the server stay idle in the pool until a request takes one and
fails on it, and the pool's reconnect attempts back off exponentially (1, 2, 4, ... 32 s)
for up to 5 minutes, so after a long outage the next attempt could be half a minute away.

Here a connection is checked when it is taken; a broken one is dropped together with every
other idle one that died with it, and the request takes another or waits for a new one. The
check is a zero-timeout poll of the idle connection's socket (issue #21): the server sends
an idle connection nothing unless it goes away (its FATAL message, FIN or RST), so a socket
with nothing to read is taken as is, and only a readable (or closed) one costs the empty
query that tells. The empty query on every checkout was a round trip, ~5 % of a small
read's CPU and a fifth of its database messages (docs/api.md, benchmark).
Background reconnects give up after RECONNECT_TIMEOUT_S; then a request that finds the pool
empty starts a connection attempt at once (the pool grows on demand), so the first request
after the database is back is served.
"""

from __future__ import annotations

import logging
import select
import time

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger(__name__)
RECONNECT_TIMEOUT_S = 2.0


class DatabasePool(AsyncConnectionPool):
    def __init__(self, conninfo: str, **kwargs) -> None:
        kwargs.setdefault("reconnect_timeout", RECONNECT_TIMEOUT_S)
        super().__init__(conninfo, **kwargs)

    # the signature of the method it overrides, hence a timeout parameter
    async def getconn(self, timeout: float | None = None) -> AsyncConnection:  # noqa: ASYNC109
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            conn = await super().getconn(max(0.0, deadline - time.monotonic()))
            if quiet(conn):
                return conn
            try:
                await self.check_connection(conn)
                return conn
            except psycopg.Error as err:
                log.info("database connection found broken (%s): dropping the idle ones", err)
                await self.putconn(conn)  # broken: the pool discards and replaces it
                await self.check()  # the others idle beside it died with the same server
            if time.monotonic() >= deadline:
                raise PoolTimeout("no working database connection")


def quiet(conn: AsyncConnection) -> bool:
    """True when an idle connection has nothing waiting on its socket: it is alive as far as
    can be told without a round trip."""
    if conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return False
    return not readable
