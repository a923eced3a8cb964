"""Connections for read-only routes: the pool of `database_read_url` when it is set (the HA
cluster's standby, `target_session_attrs=prefer-standby`), else the main pool (api/main.py).

A standby acknowledges a synchronous commit once the WAL is on its disk, and applies it a
moment later: a read there can miss the caller's own write of a few milliseconds before, so
only routes that tolerate that use this (docs/operations.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool


async def get_read_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.read_pool.connection() as conn:
        yield conn


ReadConn = Annotated[AsyncConnection, Depends(get_read_conn, scope="function")]


class autocommit:  # lower case: used as a function, `async with autocommit(pool) as conn`
    """A connection of `pool` in autocommit for the hot read routes (device latest, buckets,
    latest of many): each statement is its own snapshot, and the BEGIN and COMMIT around
    them, two of a small read's four round trips, are not sent (issue #21). Only for reads
    that write nothing and need no snapshot across their statements.

    A class, not a generator context manager around `pool.connection()`: that pair of
    wrappers was ~7 us of a small read's ~350 (`pool.putconn` still ends a transaction left
    open and drops a broken connection, as `connection()` does)."""

    __slots__ = ("_conn", "_pool")

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def __aenter__(self) -> AsyncConnection:
        conn = self._conn = await self._pool.getconn()
        try:
            await conn.set_autocommit(True)  # a flag on an idle connection: no round trip
        except BaseException:
            await self._pool.putconn(conn)
            raise
        return conn

    async def __aexit__(self, *_exc: object) -> None:
        with contextlib.suppress(psycopg.Error):  # a broken one is dropped by the pool
            await self._conn.set_autocommit(False)
        await self._pool.putconn(self._conn)


async def get_autocommit_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with autocommit(request.app.state.pool) as conn:
        yield conn


AutocommitConn = Annotated[AsyncConnection, Depends(get_autocommit_conn, scope="function")]
