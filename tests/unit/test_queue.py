"""The agent's durable queue: order, persistence across reopen, and the drop-oldest policy."""

from pathlib import Path

from edge_agents.queue import LocalQueue


async def test_seq_grows_and_survives_reopen(tmp_path: Path) -> None:
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)
    await q.open()
    stream = q.stream
    assert [await q.append(b"[1]", 1) for _ in range(3)] == [1, 2, 3]
    await q.remove([1, 2, 3])
    await q.close()

    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)
    await q.open()
    assert q.stream == stream
    assert await q.append(b"[1]", 1) == 4, "seq must never be reused, even after the queue empties"
    await q.close()


async def test_unacked_batches_are_there_after_reopen_in_order(tmp_path: Path) -> None:
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)
    await q.open()
    for i in range(5):
        await q.append(f"[{i}]".encode(), 1)
    await q.remove([2])
    await q.close()
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)
    await q.open()
    batches = await q.peek(0, 10)
    assert [b.seq for b in batches] == [1, 3, 4, 5]
    assert batches[0].readings_json == b"[0]"
    assert (q.batches, q.readings) == (4, 4)
    assert [b.seq for b in await q.peek(3, 10)] == [4, 5]
    await q.close()


async def test_full_queue_drops_oldest_and_counts(tmp_path: Path) -> None:
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 16)
    await q.open()
    chunk = b"x" * 10_000
    for _ in range(10):
        await q.append(chunk, 100)
    assert q.bytes <= 1 << 16
    assert q.dropped_readings == 400
    first = (await q.peek(0, 1))[0]
    assert first.seq == 5
    await q.close()
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 16)
    await q.open()
    assert q.dropped_readings == 400, "the drop counter is durable"
    await q.close()
