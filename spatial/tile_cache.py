"""Encoded vector tiles kept for a few seconds and shared by every viewer of one API process.

A county-wide view asks every viewer's browser for the same low-zoom tiles (the big screen, the
desks, the map page): cutting each once per `TTL_S` instead of once per request takes the
database and ST_AsMVT out of most requests (bench/map.py). Bodies are kept gzip-compressed, so
each tile is compressed once and sent compressed to the clients that accept it.

Staleness is bounded two ways: every entry expires `TTL_S` after it was cut, and a layer's
entries are dropped at once when the database announces a change to it (`forget`, driven by
the live hub: migration 083's NOTIFY for devices, sites, areas and events, the alarm steps
ingestion publishes). A change nothing announces (a device's status, which lives in its
gateway's row; an event's light turning with the clock) shows within `TTL_S`.

Concurrent requests for a tile being cut wait for that one cut (one statement, not a
hundred, when a wall of screens opens the same view).
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

TTL_S = 4.0
MAX_BYTES = 64 * 1024 * 1024  # compressed; the oldest entries go first beyond it
GZIP_LEVEL = 5  # about 1 ms for a 50 kB tile, once per TTL_S; level 9 saves little more

# which cached layers a change announced for a table makes stale
AFFECTED: dict[str, tuple[str, ...]] = {
    "devices": ("devices", "alarms"), "alarms": ("alarms",), "events": ("events",),
    "sites": ("sites",), "areas": ("areas-",), "facilities": ("cameras", "facilities"),
}

Key = tuple  # (layer, z, x, y, departments or None, days or None)


@dataclass(frozen=True)
class Entry:
    expires: float
    body: bytes  # gzip-compressed; b"" for an empty tile
    size: int    # uncompressed


class TileCache:
    def __init__(self, ttl_s: float = TTL_S, max_bytes: int = MAX_BYTES) -> None:
        self.ttl_s, self.max_bytes = ttl_s, max_bytes
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._bytes = 0
        self._cutting: dict[Key, asyncio.Future[Entry]] = {}
        self.hits = self.misses = 0

    async def get(self, key: Key, cut: Callable[[], Awaitable[bytes]],
                  fresh: bool = False) -> Entry:
        """The tile `key`, from the cache or cut by `cut()`; `fresh`: cut it anew whatever
        the cache holds (a client's `Cache-Control: no-cache`)."""
        now = time.monotonic()
        hit = None if fresh else self._entries.get(key)
        if hit is not None and hit.expires > now:
            self.hits += 1
            return hit
        pending = None if fresh else self._cutting.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._cutting[key] = future
        started = time.monotonic()
        try:
            raw = await cut()
            # an entry lives from the moment its statement started: a change committed while
            # it was being cut is never kept longer than TTL_S
            entry = Entry(started + self.ttl_s, gzip.compress(raw, GZIP_LEVEL) if raw else b"",
                          len(raw))
            self._put(key, entry)
            future.set_result(entry)
            return entry
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            if self._cutting.get(key) is future:
                del self._cutting[key]

    def _put(self, key: Key, entry: Entry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self.max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= len(dropped.body)

    def forget(self, table: str | None = None) -> int:
        """Drop the entries a change to `table` makes stale (None or a table not listed in
        AFFECTED: all of them); how many were dropped."""
        layers = AFFECTED.get(table or "")
        stale = [k for k in self._entries if layers is None or any(
            k[0] == name or (name.endswith("-") and k[0].startswith(name)) for name in layers)]
        for key in stale:
            self._bytes -= len(self._entries.pop(key).body)
        return len(stale)


def gunzip(entry: Entry) -> bytes:
    return gzip.decompress(entry.body) if entry.body else b""


# what a note on the live channel (api/services/live.py) changed: map notes name their table
_NOTE_TABLE = {"event": "events", "alarm": "alarms"}


async def follow(hub, cache: TileCache) -> None:
    """Drop cached tiles as the live hub relays changes (runs for the process's lifetime).
    `hub`: anything with `subscribe(kinds)` yielding a subscriber with a `queue`."""
    async with hub.subscribe(frozenset({"map", *_NOTE_TABLE})) as sub:
        while True:
            note = await sub.queue.get()
            cache.forget(note.get("table") if note.get("kind") == "map"
                         else _NOTE_TABLE.get(str(note.get("kind"))))
