"""Connections for read-only routes: the pool of `database_read_url` when it is set (the HA
cluster's standby, `target_session_attrs=prefer-standby`), else the main pool (api/main.py).

A standby acknowledges a synchronous commit once the WAL is on its disk, and applies it a
moment later: a read there can miss the caller's own write of a few milliseconds before, so
only routes that tolerate that use this (docs/operations.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from psycopg import AsyncConnection


async def get_read_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    async with request.app.state.read_pool.connection() as conn:
        yield conn


ReadConn = Annotated[AsyncConnection, Depends(get_read_conn, scope="function")]
