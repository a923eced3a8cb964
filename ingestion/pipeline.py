"""Batches stored on several database connections at once, finished in the order they began.

One store is a short series of round trips (claim the batch keys, COPY, mark the minutes,
commit) and the commit waits for the WAL to reach the disk. With one connection the database
sits idle during each of those waits; measured with `make bench-ingest`, one connection kept
PostgreSQL about 75 % busy and the worker about 45 %. With a second connection the next batch
is copied while the previous one commits.

Each store runs on its own connection, in its own transaction. What follows the commit (acks,
counters, rules) runs strictly in submission order: a store waits for its predecessor to end
before it acknowledges anything, so PUBACKs go out in the order the messages arrived, as MQTT
requires, and rules see batches in order. Two stores claiming the same batch key (only after
a redelivery) serialise on the key's unique index, and the later one skips it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from ingestion.latest import LatestKeeper
from ingestion.sink import Sink

Store = Callable[[Sink, asyncio.Task[None] | None], Awaitable[None]]


class StorePipeline:
    def __init__(self, database_url: str, depth: int, keep_latest: bool = True,
                 latest_every_ms: int = 0) -> None:
        # one latest-value keeper for the worker: its stores take turns writing the rows
        self.latest = LatestKeeper(latest_every_ms) if keep_latest else None
        self.sinks = [Sink(database_url, keep_latest, self.latest) for _ in range(depth)]
        self._inflight: deque[asyncio.Task[None]] = deque()
        self._started = 0

    @property
    def primary(self) -> Sink:
        """The connection for everything but batches (points, the backend decision)."""
        return self.sinks[0]

    @property
    def marks_minutes(self) -> bool:
        return self.primary.marks_minutes

    async def connect(self) -> None:
        for sink in self.sinks:
            await sink.connect()

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()

    async def submit(self, store: Store) -> None:
        """Start `store(sink, predecessor)` once a connection is free (the oldest store has
        ended); returns as soon as it has started."""
        while len(self._inflight) >= len(self.sinks):
            await asyncio.shield(self._inflight[0])
            self._inflight.popleft()
        # stores end in order, so the connection used `depth` stores ago is free now
        sink = self.sinks[self._started % len(self.sinks)]
        previous = self._inflight[-1] if self._inflight else None
        self._inflight.append(asyncio.create_task(store(sink, previous)))
        self._started += 1

    def latest_due(self) -> bool:
        """Readings committed and not yet in readings_latest, and time to write them."""
        return self.latest is not None and self.latest.due()

    async def drain(self) -> None:
        """Wait for every store; shielded, so a stop never cuts a commit short."""
        while self._inflight:
            await asyncio.shield(self._inflight[0])
            self._inflight.popleft()


async def after(previous: asyncio.Task[None] | None) -> None:
    """Wait for the previous store to end, whatever its outcome (it reports its own)."""
    if previous is not None:
        await asyncio.wait([previous])
