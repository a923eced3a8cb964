"""Encoded answers of closed periods of time buckets, kept in each API process.

A day of 1-minute buckets is 1,440 rows read from rollup_1m and encoded on every request,
though a closed hour never changes again unless late readings arrive, and those the rollup
refresh recomputes (ingestion/rollups.py). So the JSON of each closed period (an hour for
buckets that divide an hour, a day for those that divide a day) is kept here, keyed by
(point, bucket, period start), least recently used first out, within a byte budget per
process.

Invalidation: the refresh NOTIFYs `cityops_rollups` with the minutes it recomputed, in its
own transaction, so every API process hears of it once the new rollup is committed and drops
the periods it touched. Three rules keep an answer from going stale:
- only a period that ends before the oldest dirty minute (not yet refreshed) and before now
  is cached: a late reading marks its minute dirty in the transaction that stores it, so from
  its commit on, its period is computed again, not read here, until the refresh is done;
- a period computed while a notification arrived (the generation moved) is not stored: its
  query may have read the rollup before that refresh committed;
- while the listening connection is down nothing is read or stored, and on every (re)connect
  the cache is emptied (notifications sent meanwhile are lost).
The listening is api/rollup_watch.py's, which also tells which periods are closed.
Continuous aggregates (the licensed build) are refreshed by TimescaleDB, which notifies
nobody: there the cache is off (api/queries/readings.py asks `rollups.uses_caggs`).
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

log = logging.getLogger(__name__)
Key = tuple[int, int, int]  # point id, bucket seconds, period start (epoch seconds)
# what the cache holds per period: (body, starts, offsets) as bytes, the starts and offsets
# packed int64. A plain tuple of bytes is untracked by Python's garbage collector after the
# first collection it survives; a Period (or an array) is tracked, and a full collection of
# an API process walked every one: with a day of 1,000 points cached, 0.15-0.5 s during
# which the process answered nothing (`make bench-api`'s p99, issue #21)
Stored = tuple[bytes, bytes, bytes]


@dataclass(frozen=True, slots=True)
class Period:
    """One closed period's buckets: their JSON items joined by commas (no brackets), each
    item's bucket start (epoch seconds) and byte offset, so that a window starting or ending
    inside the period takes its part without computing it (api/queries/buckets.py)."""

    body: bytes
    starts: Sequence[int]  # an array, or a view of a stored period's packed bytes
    offsets: Sequence[int]

    def __len__(self) -> int:  # what it costs the cache's byte budget
        return len(self.body) + 16 * len(self.starts)

    def stored(self) -> Stored:
        return (self.body, array("q", self.starts).tobytes(),
                array("q", self.offsets).tobytes())

    @classmethod
    def of(cls, stored: Stored) -> Period:
        body, starts, offsets = stored
        return cls(body, memoryview(starts).cast("q"), memoryview(offsets).cast("q"))

    def between(self, lo: float, hi: float) -> bytes:
        """The items whose bucket starts in [lo, hi)."""
        i, j = bisect_left(self.starts, lo), bisect_left(self.starts, hi)
        if i >= j:
            return b""
        last = self.offsets[j] - 1 if j < len(self.offsets) else len(self.body)
        return self.body[self.offsets[i]:last]


class BucketCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[Key, Stored] = OrderedDict()
        self.bytes = 0
        self.generation = 0  # moves on every invalidation
        self.listening = asyncio.Event()
        self.hits = self.misses = 0

    @property
    def usable(self) -> bool:
        return self.max_bytes > 0 and self.listening.is_set()

    def get(self, key: Key) -> Period | None:
        found = self.entries.get(key) if self.usable else None
        if found is None:
            self.misses += 1
            return None
        self.entries.move_to_end(key)
        self.hits += 1
        return Period.of(found)

    def peek(self, key: Key) -> Period | None:
        """The period if it is held, without counting or reordering."""
        found = self.entries.get(key) if self.usable else None
        return None if found is None else Period.of(found)

    def put(self, key: Key, body: Period, generation: int) -> None:
        """Keep `body` unless the cache was invalidated since `generation` was read."""
        if not self.usable or generation != self.generation or len(body) > self.max_bytes:
            return
        old = self.entries.pop(key, None)
        self.bytes += len(body) - (_size(old) if old is not None else 0)
        self.entries[key] = body.stored()
        while self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= _size(dropped)

    def clear(self) -> None:
        self.generation += 1
        self.entries.clear()
        self.bytes = 0

    def invalidate(self, ranges: list[tuple[float, float]]) -> None:
        """Drop every period overlapping one of these [from, to) ranges (epoch seconds)."""
        self.generation += 1
        for key in [k for k in self.entries if _overlaps(k, ranges)]:
            self.bytes -= _size(self.entries.pop(key))

    def on_notify(self, payload: str) -> None:
        try:
            ranges = [(float(lo), float(hi)) for lo, hi in orjson.loads(payload)]
        except (ValueError, TypeError):
            log.warning("bucket cache: unreadable notification %r; emptied", payload[:100])
            self.clear()
            return
        self.invalidate(ranges)


def _size(stored: Stored) -> int:
    """What a stored period costs the budget: as len(Period)."""
    return len(stored[0]) + 2 * len(stored[1])


def _overlaps(key: Key, ranges: list[tuple[float, float]]) -> bool:
    _, bucket_s, start = key
    end = start + period_of(bucket_s)
    return any(lo < end and hi > start for lo, hi in ranges)


def period_of(bucket_s: int) -> int:
    """The period whose answers are cached for this bucket: an hour for buckets shorter than
    an hour that divide it, a day for the others that divide a day; 0: not cached. Buckets
    start at multiples of their size from midnight UTC (time_bucket's default origin), so
    they never straddle a period."""
    if bucket_s < 3600 and 3600 % bucket_s == 0:
        return 3600
    return 86400 if 86400 % bucket_s == 0 else 0

