"""StorePipeline's promises, as pure logic (the real stores are covered by the ingest
integration tests): stores overlap up to the depth, each on its own connection, and what
follows each store's commit runs in submission order even when a later store commits first."""

from __future__ import annotations

import asyncio

from ingestion.pipeline import StorePipeline, after


async def _scenario() -> dict:
    pipeline = StorePipeline("postgresql://unused", depth=2)
    seen: dict = {"committed": [], "acked": [], "peak": 0, "sinks": set()}
    running: set[int] = set()
    # each even-numbered store commits only after the next one has: later commits first
    done = [asyncio.Event() for _ in range(6)]

    def store(n: int):
        async def run(sink, previous) -> None:
            seen["sinks"].add(id(sink))
            running.add(n)
            seen["peak"] = max(seen["peak"], len(running))
            if n % 2 == 0:
                await done[n + 1].wait()
            seen["committed"].append(n)
            done[n].set()
            running.discard(n)
            await after(previous)
            seen["acked"].append(n)
        return run

    for n in range(6):
        await pipeline.submit(store(n))
    await pipeline.drain()
    return seen


def test_stores_overlap_but_finish_in_submission_order() -> None:
    seen = asyncio.run(_scenario())
    assert seen["committed"] == [1, 0, 3, 2, 5, 4]
    assert seen["acked"] == [0, 1, 2, 3, 4, 5]
    assert seen["peak"] == 2 and len(seen["sinks"]) == 2
