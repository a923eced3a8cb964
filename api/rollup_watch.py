"""What each API process hears from the database so that a device's buckets are answered from
memory, without a query per request (issue #21).

A day of 1-minute buckets comes from the cache of closed periods (api/bucket_cache.py), but
each request still asked the database two things: the device's department and point (for
the caller's department check and the point id), and the oldest minute not yet rolled up
(which periods are closed). Under ingestion that one round trip waited behind the COPY
sessions for a core and was the buckets' p99. Now one listening connection per process
keeps both, exactly enough that an answer is never older than the notification's delivery
(milliseconds):

- `cityops_rollups` (the refresh, ingestion/rollups.py): the minutes it recomputed. The
  cache drops their periods, and the oldest dirty minute is read again (`_reload`).
- `cityops_rollup_late` (migration 260): a minute marked dirty more than a minute before its
  marking statement, i.e. a late reading; from then on periods from that minute are
  computed, not read from the cache, until a refresh recomputes it. Minutes marked on time
  are not announced: they lie at most ON_TIME_S before the last reload's time, so periods
  are taken as closed only up to that horizon (an hour becomes cacheable ~2 minutes after
  it ends, instead of ~20 s).
- `cityops_registry` (migrations 056, 260): a device or point added, removed, renamed or
  moved to another department; the directory of (device, point) is emptied.

The reload runs after every refresh and at least every RELOAD_S. While the connection is down
nothing is served from here: requests ask the database as before (`closed_before` is None,
the directory and the cache are off), and both are emptied on every (re)connect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

import psycopg
from psycopg import AsyncConnection

from api.bucket_cache import BucketCache
from cityops.backoff import Backoff
from ingestion.registry import CHANNEL as REGISTRY_CHANNEL
from ingestion.rollups import NOTIFY_CHANNEL as REFRESH_CHANNEL

log = logging.getLogger(__name__)
LATE_CHANNEL = "cityops_rollup_late"
# a minute marked on time is at most 60 s before its statement's minute (migration 260), and
# that statement began at most 60 s before the transaction that commits it is seen: an
# ingest transaction takes milliseconds, seconds when the disk stalls
ON_TIME_S = 120
RELOAD_S = 15.0
_RELOAD = "SELECT extract(epoch FROM min(bucket)), extract(epoch FROM now()) FROM rollup_dirty"
PointRow = tuple[str | None, int | None, str | None]  # department, point id, data type


class PointDirectory:
    """(device, point name) -> (department, point id, data type), as the database had them
    when read; emptied on every registry notification."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self.entries: dict[tuple[str, str], PointRow] = {}
        self.generation = 0
        self.usable = False

    def get(self, device: str, point: str) -> PointRow | None:
        return self.entries.get((device, point)) if self.usable else None

    def put(self, device: str, point: str, row: PointRow, generation: int) -> None:
        """Keep `row` unless the registry changed since `generation` was read."""
        if not self.usable or generation != self.generation:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[(device, point)] = row

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()


class RollupWatch:
    def __init__(self, cache: BucketCache, points: PointDirectory | None = None) -> None:
        self.cache = cache
        self.points = points or PointDirectory()
        self._oldest_dirty: float | None = None  # as of the last reload, lowered by late marks
        self._horizon = 0.0  # the last reload's minute - ON_TIME_S
        self.reloads = 0

    def closed_before(self) -> datetime | None:
        """The time before which every minute is rolled up, as far as this process heard;
        None when it cannot tell (not listening): ask the database."""
        if not self.cache.listening.is_set():
            return None
        bound = self._horizon
        if self._oldest_dirty is not None:
            bound = min(bound, self._oldest_dirty)
        return datetime.fromtimestamp(bound, UTC)

    def on_note(self, channel: str, payload: str) -> bool:
        """Take one notification; True when the dirty minutes must be read again."""
        if channel == REFRESH_CHANNEL:
            self.cache.on_notify(payload)
            return True
        if channel == LATE_CHANNEL:
            try:
                late = float(payload)
            except ValueError:
                log.warning("rollup watch: unreadable late minute %r; reading again", payload)
                return True
            if self._oldest_dirty is None or late < self._oldest_dirty:
                self._oldest_dirty = late
            return False
        if channel == REGISTRY_CHANNEL:
            self.points.clear()
        return False

    async def _reload(self, conn: AsyncConnection) -> None:
        cur = await conn.execute(_RELOAD)
        oldest, now = await cur.fetchone()  # type: ignore[misc]
        self._oldest_dirty = None if oldest is None else float(oldest)
        self._horizon = float(now) // 60 * 60 - ON_TIME_S
        self.reloads += 1

    async def run(self, database_url: str) -> None:
        """Listen, reconnecting with backoff; off and empty while the connection is down."""
        backoff = Backoff()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    database_url, autocommit=True
                ) as conn:
                    for channel in (REFRESH_CHANNEL, LATE_CHANNEL, REGISTRY_CHANNEL):
                        await conn.execute(f"LISTEN {channel}")
                    self._forget()  # what was said while nobody listened is lost
                    await self._reload(conn)  # after LISTEN: nothing falls in between
                    self.cache.listening.set()
                    self.points.usable = True
                    backoff.reset()
                    await self._listen(conn)
            except psycopg.Error as err:
                log.warning("rollup watch: listening connection lost: %s", err)
            finally:
                self.cache.listening.clear()
                self.points.usable = False
                self._forget()
            await asyncio.sleep(backoff.next_delay())

    async def _listen(self, conn: AsyncConnection) -> None:
        reloaded = time.monotonic()
        while True:
            reload = False
            wait = max(0.0, reloaded + RELOAD_S - time.monotonic())
            # stop_after=1: the generator ends by itself after a packet's notifications, so
            # none is lost (breaking out of it drops the rest of its packet); notifications
            # that come during the reload wait in psycopg's backlog for the next round
            async for note in conn.notifies(timeout=wait, stop_after=1):
                reload |= self.on_note(note.channel, note.payload)
            if reload or time.monotonic() - reloaded >= RELOAD_S:
                await self._reload(conn)
                reloaded = time.monotonic()

    def _forget(self) -> None:
        self.cache.clear()
        self.points.clear()
