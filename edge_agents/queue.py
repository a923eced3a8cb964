"""Store-and-forward: a durable local queue of telemetry batches (SQLite, WAL).

A batch gets its seq when it is queued, and keeps it until ingestion's commit receipt names
it (edge_agents/uplink.py), so a batch resent after a crash carries the same (stream, seq) key
and ingestion stores it once. AUTOINCREMENT keeps seq growing across restarts even after the
queue empties.

`max_bytes` limits the files on disk (database, WAL and its index), not the payload: SQLite's
pages, a WAL that keeps its high-water mark and free pages left by deleted batches once made a
256 KiB queue take 4.5 MB. So the WAL is checkpointed and truncated at an eighth of the limit
(at most 4 MiB), freed pages go back to the file system (auto_vacuum=INCREMENTAL), and before a
batch is written the oldest batches are dropped, and counted, until the files plus room for the
new batch fit: the newest data is worth more to a control room than the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from edge_agents.recent import RecentBatches

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    readings BLOB NOT NULL,
    count INTEGER NOT NULL
);
-- every command id the agent has seen: a redelivered command is never executed again
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    result BLOB,
    published INTEGER NOT NULL DEFAULT 0
);
"""
COMMANDS_KEPT_S = 7 * 86400
WAL_CAP_MAX = 4 << 20


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    seq: int
    readings_json: bytes
    count: int


class LocalQueue:
    """All SQLite work runs on one private thread: sqlite3 connections are single-threaded."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="queue")
        self._db: sqlite3.Connection | None = None
        self.stream = ""
        self.bytes = 0
        self.batches = 0
        self.readings = 0
        self.last_seq = 0
        self.dropped_readings = 0
        self._page_size = 4096
        self._dropping = False
        self._dropped_upto = 0  # the last seq a full queue dropped (set on the queue's thread)
        self.recent = RecentBatches(min(WAL_CAP_MAX, max_bytes // 8))

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        if db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # a file made before auto_vacuum: converted once (a new file is empty: instant)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a committed batch survives kill -9 (the OS has it); only power loss could
        # cost the last commits, which is the usual trade on an edge box's flash storage
        db.execute("PRAGMA synchronous=NORMAL")
        self._page_size = db.execute("PRAGMA page_size").fetchone()[0]
        wal_cap = min(WAL_CAP_MAX, self.max_bytes // 8)
        db.execute(f"PRAGMA journal_size_limit={wal_cap}")
        db.execute(f"PRAGMA wal_autocheckpoint={max(1, wal_cap // (self._page_size + 24))}")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='stream'").fetchone()
        if row is None:
            self.stream = str(uuid.uuid4())
            db.execute("INSERT INTO meta VALUES ('stream', ?)", (self.stream,))
        else:
            self.stream = row[0]
        dropped = db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
        self.dropped_readings = int(dropped[0]) if dropped else 0
        n, size, count = db.execute(
            "SELECT count(*), coalesce(sum(length(readings)),0), coalesce(sum(count),0) "
            "FROM batches"
        ).fetchone()
        self.batches, self.bytes, self.readings = n, size, count
        self.last_seq = db.execute(
            "SELECT coalesce(max(seq), 0) FROM batches"
        ).fetchone()[0]
        db.execute("DELETE FROM commands WHERE received_ms < ?",
                    (int((time.time() - COMMANDS_KEPT_S) * 1000),))
        self._db = db

    async def append(self, readings_json: bytes, count: int) -> int:
        seq = await self._run(self._append, readings_json, count)
        self.recent.forget_upto(self._dropped_upto)
        self.recent.remember(QueuedBatch(seq, readings_json, count))
        return seq

    def disk_bytes(self) -> int:
        """What the queue takes on disk: the database, its WAL and the WAL's index."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def _room_for(self, size: int) -> int:
        # the batch's pages (overflow pages plus the leaf and a parent it changes), once in the
        # WAL and once in the database after the checkpoint
        pages = -(-size // (self._page_size - 4)) + 2
        return 2 * pages * self._page_size

    def _append(self, readings_json: bytes, count: int) -> int:
        assert self._db is not None
        need = self._room_for(len(readings_json))
        disk = self.disk_bytes()
        if disk + need > self._target:
            self._compact()  # free pages first: no need to drop data for them
            # then down to the low mark at once, not just below the limit: each compaction
            # costs an fsync or two, so a full queue compacts every few batches, not each one
            while self.batches and self.disk_bytes() + need > self._target:
                self._drop_oldest(self.disk_bytes() + need - self._low)
                self._compact()
        elif self._dropping and disk + need <= self._low:
            self._dropping = False
            log.info("queue has room again (%d batches, %d bytes on disk)",
                     self.batches, self.disk_bytes())
        cur = self._db.execute(
            "INSERT INTO batches (readings, count) VALUES (?, ?)", (readings_json, count)
        )
        self.batches += 1
        self.bytes += len(readings_json)
        self.readings += count
        self.last_seq = int(cur.lastrowid)  # type: ignore[arg-type]
        return self.last_seq

    @property
    def _target(self) -> int:
        # an eighth of the limit left for what a write adds before the next compaction (WAL
        # frames of a receipt's deletes, pages a checkpoint moves)
        return self.max_bytes - self.max_bytes // 8

    @property
    def _low(self) -> int:
        return self.max_bytes - self.max_bytes // 4

    def _settle(self) -> None:
        if self.disk_bytes() > self._target:
            self._compact()

    def _drop_oldest(self, at_least_bytes: int) -> None:
        """Drop the oldest batches, at least one, until about `at_least_bytes` are freed."""
        assert self._db is not None
        freed, seq, size, count = 0, 0, 0, 0
        for row_seq, row_size, row_count in self._db.execute(
            "SELECT seq, length(readings), count FROM batches ORDER BY seq LIMIT 1000"
        ).fetchall():
            seq, size, count = row_seq, size + row_size, count + row_count
            freed += self._room_for(row_size) // 2
            if freed >= at_least_bytes:
                break
        self._db.execute("BEGIN")
        n = self._db.execute("DELETE FROM batches WHERE seq <= ?", (seq,)).rowcount
        self.dropped_readings += count
        self._dropped_upto = seq
        self._db.execute(
            "INSERT INTO meta VALUES ('dropped', ?) ON CONFLICT(key) DO UPDATE SET value=?",
            (str(self.dropped_readings), str(self.dropped_readings)),
        )
        self._db.execute("COMMIT")
        self.batches -= n
        self.bytes -= size
        self.readings -= count
        if not self._dropping:  # once per episode: the counter and the alarm say the rest
            self._dropping = True
            log.warning("queue full (%d bytes on disk, limit %d): dropping the oldest batches, "
                        "up to %d (%d readings)", self.disk_bytes(), self.max_bytes, seq, count)

    def _compact(self) -> None:
        """Give freed pages back to the file system and empty the WAL into the database."""
        assert self._db is not None
        self._db.execute("PRAGMA incremental_vacuum").fetchall()
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    async def peek(
        self, after_seq: int, limit: int, upto_seq: int | None = None
    ) -> list[QueuedBatch]:
        cached = self.recent.after(after_seq, limit, upto_seq)
        if cached is not None:
            return cached
        return await self._run(self._peek, after_seq, limit, upto_seq)

    def _peek(self, after_seq: int, limit: int, upto_seq: int | None = None) -> list[QueuedBatch]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT seq, readings, count FROM batches WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, upto_seq if upto_seq is not None else 2**62, limit),
        ).fetchall()
        return [QueuedBatch(seq, bytes(blob), count) for seq, blob, count in rows]

    async def get(self, seqs: list[int]) -> list[QueuedBatch]:
        """The batches of these seqs that are still queued, in seq order."""
        return await self._run(self._get, seqs)

    def _get(self, seqs: list[int]) -> list[QueuedBatch]:
        assert self._db is not None
        out: list[QueuedBatch] = []
        for i in range(0, len(seqs), 500):
            part = seqs[i:i + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT seq, readings, count FROM batches WHERE seq IN ({marks})", part
            ).fetchall()
            out += [QueuedBatch(seq, bytes(blob), count) for seq, blob, count in rows]
        return sorted(out, key=lambda b: b.seq)

    async def remove_ranges(self, seq_ranges: list[tuple[int, int]]) -> int:
        """Forget the batches in these inclusive seq ranges; returns how many there were."""
        self.recent.forget(seq_ranges)
        return await self._run(self._remove_ranges, seq_ranges)

    def _remove_ranges(self, seq_ranges: list[tuple[int, int]]) -> int:
        assert self._db is not None
        removed = 0
        self._db.execute("BEGIN")
        for first, last in seq_ranges:
            size, count, n = self._db.execute(
                "SELECT coalesce(sum(length(readings)),0), coalesce(sum(count),0), count(*) "
                "FROM batches WHERE seq BETWEEN ? AND ?", (first, last)).fetchone()
            if n:
                self._db.execute("DELETE FROM batches WHERE seq BETWEEN ? AND ?", (first, last))
                self.bytes -= size
                self.readings -= count
                self.batches -= n
                removed += n
        self._db.execute("COMMIT")
        self._settle()
        return removed

    async def remove(self, seqs: list[int]) -> None:
        if seqs:
            await self.remove_ranges([(seq, seq) for seq in seqs])

    # -- commands: seen ids and their results, in the same durable file
    async def command_seen(self, command_id: str) -> tuple[bool, bytes | None]:
        """Record a command id; (True, stored result or None) when it was seen before."""
        return await self._run(self._command_seen, command_id)

    def _command_seen(self, command_id: str) -> tuple[bool, bytes | None]:
        assert self._db is not None
        cur = self._db.execute(
            "INSERT INTO commands (id, received_ms) VALUES (?, ?) ON CONFLICT(id) DO NOTHING",
            (command_id, int(time.time() * 1000)),
        )
        if cur.rowcount == 1:
            return False, None
        row = self._db.execute("SELECT result FROM commands WHERE id=?", (command_id,)).fetchone()
        return True, (bytes(row[0]) if row[0] is not None else None)

    async def command_done(self, command_id: str, result: bytes) -> None:
        await self._run(
            self._db_execute, "UPDATE commands SET result=? WHERE id=?", (result, command_id)
        )

    async def command_published(self, command_id: str) -> None:
        await self._run(
            self._db_execute, "UPDATE commands SET published=1 WHERE id=?", (command_id,)
        )

    async def unpublished_results(self) -> list[tuple[str, bytes]]:
        rows = await self._run(
            self._db_fetch,
            "SELECT id, result FROM commands WHERE published=0 AND result IS NOT NULL "
            "ORDER BY received_ms",
            (),
        )
        return [(cid, bytes(result)) for cid, result in rows]

    # -- small key-value state (e.g. the last gateway config received)
    async def get_meta(self, key: str) -> str | None:
        rows = await self._run(self._db_fetch, "SELECT value FROM meta WHERE key=?", (key,))
        return rows[0][0] if rows else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(
            self._db_execute,
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def _db_execute(self, sql: str, params: tuple) -> None:
        assert self._db is not None
        self._db.execute(sql, params)

    def _db_fetch(self, sql: str, params: tuple) -> list[tuple]:
        assert self._db is not None
        return self._db.execute(sql, params).fetchall()

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)
