"""The identity cache's refresh ahead (api/refresh_ahead.py), on a clock of the test's own:
served without waiting while younger than the bound, read again in the background past half
of it, never served past it, and a forget drops loads under way."""

from __future__ import annotations

import asyncio

import pytest

from api import refresh_ahead
from api.refresh_ahead import RefreshAheadCache


class Source:
    """A load whose answers the test releases one at a time."""

    def __init__(self) -> None:
        self.version = 0
        self.started = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def load(self) -> int:
        self.started += 1
        version = self.version  # the row as the query found it
        await self.gate.wait()
        return version


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(refresh_ahead.time, "monotonic", lambda: now[0])
    return now


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)  # let the background load run: no time passes


async def test_a_steady_caller_never_waits_and_sees_changes_within_the_bound(
    clock: list[float],
) -> None:
    cache, source = RefreshAheadCache(2.0, 1.0, 100), Source()
    assert await cache.get("k", source.load) == 0 and source.started == 1
    clock[0] += 0.9
    assert await cache.get("k", source.load) == 0 and source.started == 1  # fresh

    source.version, source.gate = 1, asyncio.Event()
    clock[0] += 0.2  # 1.1 s old: served, one load starts behind it
    assert await cache.get("k", source.load) == 0
    await _settle()
    assert await cache.get("k", source.load) == 0
    await _settle()
    assert source.started == 2  # one load behind both, not one each
    source.gate.set()
    await _settle()
    assert await cache.get("k", source.load) == 1 and cache.loads == 2


async def test_past_the_bound_requests_wait_and_share_one_load(clock: list[float]) -> None:
    cache, source = RefreshAheadCache(2.0, 1.0, 100), Source()
    await cache.get("k", source.load)
    source.version, source.gate = 1, asyncio.Event()
    clock[0] += 2.0
    waiting = [asyncio.create_task(cache.get("k", source.load)) for _ in range(3)]
    await _settle()
    assert not any(t.done() for t in waiting) and source.started == 2
    source.gate.set()
    assert await asyncio.gather(*waiting) == [1, 1, 1]


async def test_a_forget_drops_loads_under_way(clock: list[float]) -> None:
    cache, source = RefreshAheadCache(2.0, 1.0, 100), Source()
    source.gate = asyncio.Event()
    before = asyncio.create_task(cache.get("k", source.load))  # reads the old row
    await _settle()
    cache.forget()  # the row changed meanwhile
    source.version = 1
    after = asyncio.create_task(cache.get("k", source.load))
    await _settle()
    assert source.started == 2  # its own load, not the one started before the change
    source.gate.set()
    assert (await before, await after) == (0, 1)
    assert await cache.get("k", source.load) == 1 and source.started == 2


async def test_a_failed_background_load_keeps_the_value_until_the_bound(
    clock: list[float],
) -> None:
    cache = RefreshAheadCache(2.0, 1.0, 100)

    async def broken() -> int:
        raise OSError("database away")

    async def good() -> int:
        return 5

    assert await cache.get("k", good) == 5
    clock[0] += 1.5
    assert await cache.get("k", broken) == 5  # served; the load behind it fails quietly
    await _settle()
    clock[0] += 0.5  # 2 s old: never served again
    with pytest.raises(OSError, match="database away"):
        await cache.get("k", broken)
