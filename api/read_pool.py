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


@contextlib.asynccontextmanager
async def autocommit(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection]:
    """A connection of `pool` in autocommit for the hot read routes (device latest, buckets,
    latest of many): each statement is its own snapshot, and the BEGIN and COMMIT around
    them, two of a small read's four round trips, are not sent (issue #21). Only for reads
    that write nothing and need no snapshot across their statements."""
    async with pool.connection() as conn:
        await conn.set_autocommit(True)  # a flag on an idle connection: no round trip
        try:
            yield conn
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken one is dropped by the pool
                await conn.set_autocommit(False)


async def get_autocommit_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with autocommit(request.app.state.pool) as conn:
        yield conn


AutocommitConn = Annotated[AsyncConnection, Depends(get_autocommit_conn, scope="function")]
