"""What the API read about a caller (a user's row, a session, an API key, a wall's token), kept
for a bounded time and read again *before* it runs out (issue #21).

The identity cache (api/identity.py) kept a row for `ttl_s` and then made the next request
wait for the query. Under ingestion that query waits behind the COPY sessions for a core
(tens of ms), and every request of that caller arriving meanwhile read it again: with a
2 s bound, a caller polling at 100 requests/s had ~1 % of its requests behind a query, which
was the p99 of the cached reads (`make bench-api`). Here:

- a value younger than `refresh_s` is served as is;
- one between `refresh_s` and `ttl_s` is served too, while one background load replaces it,
  so a steady caller never waits for the database;
- one `ttl_s` old is never served: the request waits for a load, which concurrent requests
  of the same key share.

The bound is the same as before: a value is at most `ttl_s` old when served, counted from
the start of the query that read it. `forget()` (a user or key changed, heard by NOTIFY or
made by this process) drops everything and every load under way: a load started before it
neither fills the cache nor answers a request that comes after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from api.shared_answers import retrieved

Load = Callable[[], Awaitable[Any]]


class RefreshAheadCache:
    def __init__(self, ttl_s: float, refresh_s: float, max_entries: int) -> None:
        self.ttl_s, self.refresh_s, self.max_entries = ttl_s, refresh_s, max_entries
        self._values: dict[Hashable, tuple[float, Any]] = {}  # key: (load started, value)
        self._loading: dict[Hashable, asyncio.Task[Any]] = {}
        self._generation = 0
        self.loads = 0

    async def get(self, key: Hashable, load: Load) -> Any:
        hit = self._values.get(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            if age < self.ttl_s:
                if age >= self.refresh_s and key not in self._loading:
                    self._start(key, load)  # replaced in the background; this one served
                return hit[1]
        task = self._loading.get(key) or self._start(key, load)
        # shielded: a request that goes away does not cancel the others' load
        return await asyncio.shield(task)

    def forget(self) -> None:
        self._generation += 1
        self._values.clear()
        self._loading.clear()  # the loads run on, but fill nothing and answer nobody new

    def _start(self, key: Hashable, load: Load) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(self._load(key, load, self._generation))
        task.add_done_callback(retrieved)
        self._loading[key] = task
        return task

    async def _load(self, key: Hashable, load: Load, generation: int) -> Any:
        started = time.monotonic()
        try:
            value = await load()
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        self.loads += 1
        if generation == self._generation:
            if len(self._values) >= self.max_entries:
                self._values.clear()
            self._values[key] = (started, value)
        return value
