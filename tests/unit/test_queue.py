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
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 18)
    await q.open()
    chunk = b"x" * 10_000
    for _ in range(40):
        await q.append(chunk, 100)
        assert q.disk_bytes() <= 1 << 18
    assert q.dropped_readings == 100 * (40 - q.batches) > 0
    first = (await q.peek(0, 1))[0]
    assert first.seq == 41 - q.batches, "the oldest are dropped, the newest kept"
    dropped = q.dropped_readings
    await q.close()
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 18)
    await q.open()
    assert q.dropped_readings == dropped, "the drop counter is durable"
    await q.close()


def _files(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def test_files_on_disk_stay_within_the_limit_while_batches_come_and_go(
    tmp_path: Path,
) -> None:
    """Issue #22 item 11: a 256 KiB queue took 4.5 MB (a WAL keeping its high-water mark,
    free pages). The files themselves, WAL and its index included, must stay in the limit."""
    path = tmp_path / "q.db"
    q = LocalQueue(path, max_bytes=1 << 18)
    await q.open()
    chunk = b"y" * 6_000
    peak = 0
    for i in range(150):
        seq = await q.append(chunk, 60)
        if i % 3:  # most batches are delivered and leave the queue, some pile up
            await q.remove_ranges([(seq, seq)])
        peak = max(peak, _files(path))
    assert peak <= 1 << 18, f"queue files took {peak} bytes"
    assert q.batches > 10, "what fits is kept"
    await q.close()


async def test_remove_ranges_and_get(tmp_path: Path) -> None:
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)
    await q.open()
    for i in range(10):
        await q.append(f"[{i}]".encode(), 2)
    assert await q.remove_ranges([(2, 4), (7, 7), (50, 60)]) == 4
    assert (q.batches, q.readings) == (6, 12)
    got = await q.get([9, 1, 3, 8])
    assert [b.seq for b in got] == [1, 8, 9], "only what is still queued, in seq order"
    assert got[0].readings_json == b"[0]"
    await q.close()


async def test_the_newest_batches_read_from_memory_are_what_sqlite_holds(tmp_path: Path) -> None:
    q = LocalQueue(tmp_path / "q.db", max_bytes=1 << 20)  # memory keeps 128 KiB of batches
    await q.open()
    for i in range(40):
        await q.append(f"[{i}]".encode() + b" " * 8000, 1)
    await q.remove_ranges([(30, 31)])
    await q.remove([35])

    def seqs(batches) -> list:
        return [(b.seq, b.readings_json, b.count) for b in batches]

    cases = [(27, 10, None), (33, 3, None), (36, 10, 38), (0, 5, None), (20, 100, 28)]
    memory = [seqs(await q.peek(*case)) for case in cases]
    assert q.recent.complete_from > 1, "the oldest were let go from memory"
    on_disk = [seqs(await q._run(q._peek, *case)) for case in cases]  # SQLite itself
    assert memory == on_disk
    assert [s for s, _, _ in memory[0]] == [28, 29, 32, 33, 34, 36, 37, 38, 39, 40]
    await q.close()
