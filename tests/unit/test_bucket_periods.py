"""Encoded periods of buckets (api/queries/buckets.py, api/bucket_cache.Period): every
item's start and byte offset right, slices and parts equal to encoding the rows they hold,
and the window's plan slicing only closed periods at bucket boundaries."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from api.queries.buckets import _plan, encode, part

UTC_ZONE = ZoneInfo("Etc/UTC")  # what psycopg gives for a UTC session
HOUR = 3600


def _rows(minutes: list[int]) -> list[tuple]:
    start = datetime(2026, 1, 1, tzinfo=UTC_ZONE)
    return [(start + timedelta(minutes=m), 1.5 + m, -1.0, 2.0e20, m % 3 + 1) for m in minutes]


def test_items_offsets_and_parts_match_the_rows() -> None:
    rows = _rows([0, 1, 7, 59, 60, 61, 130])  # gaps and three hours
    whole = encode(rows)
    assert list(whole.starts) == [int(r[0].timestamp()) for r in rows]
    assert orjson.loads(b"[" + whole.body + b"]") == orjson.loads(orjson.dumps(
        [{"time": t, "avg": a, "min": lo, "max": hi, "count": n} for t, a, lo, hi, n in rows]))
    base = whole.starts[0]
    for lo, hi in ((base, base + HOUR), (base + HOUR, base + 2 * HOUR),
                   (base + 2 * HOUR, base + 3 * HOUR), (base + 60, base + 3600 + 61)):
        inside = [r for r in rows if lo <= r[0].timestamp() < hi]
        assert whole.between(lo, hi) == encode(inside).body
        piece = part(whole, lo, hi)
        assert piece == encode(inside)  # offsets rebased, a Period of its own
    assert encode([]).body == b"" and whole.between(base + 3 * HOUR, base + 4 * HOUR) == b""


def test_plan_slices_closed_periods_on_bucket_boundaries_only() -> None:
    day = 1_767_225_600  # a midnight
    # minute-aligned edges inside hours, all closed: every piece sliced from its hour
    plan = _plan(day + 1800, day + 2 * HOUR + 900, 60, HOUR, closed=day + 10 * HOUR)
    assert plan == [(day + 1800, day + HOUR, day), (day + HOUR, day + 2 * HOUR, day + HOUR),
                    (day + 2 * HOUR, day + 2 * HOUR + 900, day + 2 * HOUR)]
    # a mid-minute start and an open last hour: both computed
    plan = _plan(day + 1820, day + 3 * HOUR, 60, HOUR, closed=day + 2 * HOUR + 600)
    assert plan == [(day + 1820, day + HOUR, None), (day + HOUR, day + 2 * HOUR, day + HOUR),
                    (day + 2 * HOUR, day + 3 * HOUR, None)]
    # adjacent computed pieces are one query
    assert _plan(day, day + 3 * HOUR, 60, HOUR, closed=day + 600) == [(day, day + 3 * HOUR,
                                                                     None)]


def test_a_cached_period_is_held_untracked_and_read_back_equal() -> None:
    """The cache holds plain bytes, which a full garbage collection no longer walks (with a
    day of 1,000 points cached, each full collection stopped an API process 0.15-0.5 s)."""
    import asyncio
    import gc

    from api.bucket_cache import BucketCache

    rows = _rows([0, 1, 7, 59])
    whole = encode(rows)
    cache = BucketCache(1 << 20)
    cache.listening = asyncio.Event()
    cache.listening.set()
    cache.put((1, 60, 0), whole, cache.generation)
    gc.collect()
    assert not gc.is_tracked(cache.entries[(1, 60, 0)])
    found = cache.get((1, 60, 0))
    assert found is not None and found.body == whole.body
    assert list(found.starts) == list(whole.starts) and list(found.offsets) == list(whole.offsets)
    base = whole.starts[0]
    assert found.between(base + 60, base + 420) == whole.between(base + 60, base + 420)
    assert part(found, base, base + 120) == part(whole, base, base + 120)
    assert cache.bytes == len(whole)
