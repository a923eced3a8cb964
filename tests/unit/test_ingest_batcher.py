"""Batches stay bounded in readings and in messages, whatever waits."""

from __future__ import annotations

from ingestion.batcher import Batcher


async def test_batches_are_bounded_by_readings_and_by_a_third_of_the_window() -> None:
    b = Batcher(max_readings=1000, receive_window=300)
    for mid in range(250):  # ~50 readings each (4500 bytes / 90)
        b.add("t", b"x" * 4500, mid, 1)
    assert b.is_full and b.full.is_set()
    first = b.take()
    assert [m[2] for m in first] == list(range(20)), "1000 readings: 20 messages, in order"
    small = Batcher(max_readings=100_000, receive_window=300)
    for mid in range(250):
        small.add("t", b"{}", mid, 1)  # one reading each
    assert len(small.take()) == 100, "a third of the window"
    assert len(small.take()) == 100 and len(small.take()) == 50 and small.take() == []
    assert small.readings == 0 and not small.is_full
