"""Shared set-up of the indicator tests (no tests here): the starter indicator system loaded
into the session database, as `cityops indicators load` does."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import psycopg

from indicators import store


def load_starter(database_url: str) -> None:
    async def load() -> None:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await store.load(conn, store.starter(), "test")

    # in a thread of its own: callers may already run an event loop (Playwright's sync API)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, load()).result()
