"""Live updates for Server-Sent Events.

Command results (and alarms, once ingestion publishes them) are announced with PostgreSQL
NOTIFY on one channel by whichever API process handled them; every API process LISTENs and
fans the events out to its own SSE clients. Readings are not announced (that would cost the
ingest path a NOTIFY per batch): a stream polls the latest values of its few devices instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from cityops.backoff import Backoff

log = logging.getLogger(__name__)
CHANNEL = "cityops_live"
SUBSCRIBER_QUEUE = 1000


async def announce(conn: psycopg.AsyncConnection, kind: str, body: dict[str, Any]) -> None:
    """NOTIFY in the caller's transaction: the event goes out only if the change commits."""
    payload = orjson.dumps({"kind": kind, **body}, default=str).decode()
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload[:7900]))


@dataclass(eq=False)
class Subscriber:
    kinds: frozenset[str]
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE)
    )
    lost: int = 0


class LiveHub:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.subscribers: set[Subscriber] = set()
        self.listening = asyncio.Event()
        # told when any user or API key changes (api/identity.py forgets what it cached),
        # and on every (re)connect, which may have missed such a change
        self.watchers: list[Callable[[], None]] = []

    @contextlib.asynccontextmanager
    async def subscribe(self, kinds: frozenset[str]) -> AsyncIterator[Subscriber]:
        sub = Subscriber(kinds)
        self.subscribers.add(sub)
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)

    def _auth_changed(self) -> None:
        for watcher in self.watchers:
            watcher()

    def publish(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "auth":
            self._auth_changed()
            return
        for sub in self.subscribers:
            if event.get("kind") not in sub.kinds:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.lost += 1  # a slow client loses events rather than stalling the others

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._auth_changed()
                    self.listening.set()
                    backoff.reset()
                    async for note in conn.notifies():
                        with contextlib.suppress(ValueError):
                            self.publish(orjson.loads(note.payload))
            except psycopg.Error as err:
                log.warning("live: listening connection lost: %s", err)
            finally:
                self.listening.clear()
            await asyncio.sleep(backoff.next_delay())
