"""Store-and-forward: a durable local queue of telemetry batches (SQLite, WAL).

A batch gets its seq when it is queued, and keeps it until the broker acknowledges it, so a
batch resent after a crash carries the same (stream, seq) key and ingestion stores it once.
AUTOINCREMENT keeps seq growing across restarts even after the queue empties.
When the queue is over `max_bytes`, the oldest batches are dropped and counted (docs/profiles
and operations say so): the newest data is worth more to a control room than the oldest.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a committed batch survives kill -9 (the OS has it); only power loss could
        # cost the last commits, which is the usual trade on an edge box's flash storage
        db.execute("PRAGMA synchronous=NORMAL")
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
        return await self._run(self._append, readings_json, count)

    def _append(self, readings_json: bytes, count: int) -> int:
        assert self._db is not None
        while self.batches and self.bytes + len(readings_json) > self.max_bytes:
            self._drop_oldest()
        cur = self._db.execute(
            "INSERT INTO batches (readings, count) VALUES (?, ?)", (readings_json, count)
        )
        self.batches += 1
        self.bytes += len(readings_json)
        self.readings += count
        self.last_seq = int(cur.lastrowid)  # type: ignore[arg-type]
        return self.last_seq

    def _drop_oldest(self) -> None:
        assert self._db is not None
        seq, size, count = self._db.execute(
            "SELECT seq, length(readings), count FROM batches ORDER BY seq LIMIT 1"
        ).fetchone()
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM batches WHERE seq=?", (seq,))
        self.dropped_readings += count
        self._db.execute(
            "INSERT INTO meta VALUES ('dropped', ?) ON CONFLICT(key) DO UPDATE SET value=?",
            (str(self.dropped_readings), str(self.dropped_readings)),
        )
        self._db.execute("COMMIT")
        self.batches -= 1
        self.bytes -= size
        self.readings -= count
        log.warning("queue full: dropped batch %d (%d readings)", seq, count)

    async def peek(
        self, after_seq: int, limit: int, upto_seq: int | None = None
    ) -> list[QueuedBatch]:
        return await self._run(self._peek, after_seq, limit, upto_seq)

    def _peek(self, after_seq: int, limit: int, upto_seq: int | None = None) -> list[QueuedBatch]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT seq, readings, count FROM batches WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, upto_seq if upto_seq is not None else 2**62, limit),
        ).fetchall()
        return [QueuedBatch(seq, bytes(blob), count) for seq, blob, count in rows]

    async def remove(self, seqs: list[int]) -> None:
        if seqs:
            await self._run(self._remove, seqs)

    def _remove(self, seqs: list[int]) -> None:
        assert self._db is not None
        marks = ",".join("?" * len(seqs))
        size, count, n = self._db.execute(
            f"SELECT coalesce(sum(length(readings)),0), coalesce(sum(count),0), count(*) "
            f"FROM batches WHERE seq IN ({marks})",
            seqs,
        ).fetchone()
        self._db.execute(f"DELETE FROM batches WHERE seq IN ({marks})", seqs)
        self.bytes -= size
        self.readings -= count
        self.batches -= n

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
