"""The only place ingestion talks to PostgreSQL: batch keys, binary COPY, dead letters,
all in one transaction so a batch is stored exactly once and nothing is acked unsaved."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

import psycopg

from cityops.errors import SinkUnavailable, StoreRejected
from ingestion.decode import DeadLetter, DecodedBatch, PointRef
from ingestion.latest import KEEP_LATEST, LatestKeeper, Newest
from ingestion.rollups import minutes_of, uses_caggs

# errors that mean "the database went away or is restarting": retry, never drop or ack
_TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
# PostgreSQL's binary timestamps count microseconds from 2000-01-01
_PG_EPOCH_MS = 946_684_800_000
_NUMERIC = struct.Struct(">hiqiiidih")
_NUMERIC_NULL = struct.Struct(">hiqiiiih")  # value: length -1 (NULL), no bytes
_TEXT_HEAD = struct.Struct(">hiqii")
_QUALITY = struct.Struct(">ih")


def numeric_copy_rows(rows: list[tuple[int, int, float | None, int]]) -> bytes:
    """(ts_ms, point_id, value, quality) rows in binary COPY form (no header), packed by hand:
    several times faster than per-row adaptation, which matters at 300k rows/s."""
    out = bytearray()
    pack, pack_null = _NUMERIC.pack, _NUMERIC_NULL.pack
    for ts, point_id, value, quality in rows:
        micros = (ts - _PG_EPOCH_MS) * 1000
        if value is None:
            out += pack_null(4, 8, micros, 4, point_id, -1, 2, quality)
        else:
            out += pack(4, 8, micros, 4, point_id, 8, value, 2, quality)
    return bytes(out)


def numeric_copy_data(rows: list[tuple[int, int, float | None, int]]) -> bytes:
    """A whole binary COPY stream of numeric rows."""
    return _HEADER + numeric_copy_rows(rows) + _TRAILER


def prepare(batches: list[DecodedBatch], minutes: bool = True) -> None:
    """Do the CPU work of a store before its transaction (the worker does this while the
    previous batch is being committed), so the database waits for Python as little as can be.
    `minutes`: also the minutes to mark dirty (not needed when the rollups are continuous
    aggregates)."""
    for b in batches:
        if b.numeric and b.numeric_copy is None:
            b.numeric_copy = numeric_copy_rows(b.numeric)
            if minutes:
                b.minutes = {row[0] // 60_000 for row in b.numeric}


def text_copy_data(rows: list[tuple[int, int, str | None, int]]) -> bytes:
    out = bytearray(_HEADER)
    for ts, point_id, value, quality in rows:
        out += _TEXT_HEAD.pack(4, 8, (ts - _PG_EPOCH_MS) * 1000, 4, point_id)
        if value is None:
            out += struct.pack(">i", -1)
        else:
            data = value.encode("utf-8")
            out += struct.pack(">i", len(data)) + data
        out += _QUALITY.pack(2, quality)
    out += _TRAILER
    return bytes(out)


@dataclass
class StoreResult:
    readings: int = 0
    fresh: list[DecodedBatch] = field(default_factory=list)
    duplicates: int = 0


# a reading stamped this long before its batch is committed counts as late on the dashboards
LATE_AFTER_MS = 300_000


def late_count(batch: DecodedBatch, cutoff_ms: int) -> int:
    """Readings of the batch stamped before the cutoff (rows start with their ts in ms)."""
    return sum(1 for row in batch.numeric if row[0] < cutoff_ms) + sum(
        1 for row in batch.text if row[0] < cutoff_ms)


class Sink:
    def __init__(self, database_url: str, keep_latest: bool = True,
                 latest: LatestKeeper | None = None) -> None:
        self.database_url = database_url
        # maintain readings_latest (off only to measure what it costs: bench-ingest); the
        # keeper is shared by a worker's sinks (ingestion/latest.py); alone, a sink writes
        # its rows with every store
        self.latest = (latest or LatestKeeper()) if keep_latest else None
        self.conn: psycopg.AsyncConnection | None = None
        # whether the rollups are the platform's tables (mark the minutes written) or
        # continuous aggregates; decided at the first connection, as migration 017 fixed it
        self.marks_minutes = True
        self._decided = False

    async def connect(self) -> None:
        try:
            self.conn = await psycopg.AsyncConnection.connect(self.database_url)
            if not self._decided:
                self.marks_minutes = not await uses_caggs(self.conn)
                await self.conn.commit()
                self._decided = True
        except _TRANSIENT as err:
            await self.close()
            raise SinkUnavailable(f"cannot reach the database: {err}") from err

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()

    async def load_points(self) -> dict[tuple[str, str], PointRef]:
        if self.conn is None:
            await self.connect()
        assert self.conn is not None
        try:
            async with self.conn.cursor() as cur:
                await cur.execute(
                    "SELECT d.id, p.name, p.id, d.gateway_id, p.data_type = 'string'"
                    " FROM points p JOIN devices d ON d.id = p.device_id"
                )
                rows = await cur.fetchall()
            await self.conn.commit()
        except _TRANSIENT as err:
            await self.close()
            raise SinkUnavailable(f"cannot read the points: {err}") from err
        return {(dev, name): PointRef(pid, gw, is_text) for dev, name, pid, gw, is_text in rows}

    async def store(self, batches: list[DecodedBatch], dead: list[DeadLetter]) -> StoreResult:
        """Store new batches and dead letters in one transaction.

        A batch whose key is already recorded is skipped (a redelivery); the minutes written
        are marked for the rollups in the same transaction, so none is ever missed (unless the
        rollups are continuous aggregates, which TimescaleDB keeps up to date).
        """
        if self.conn is None:
            await self.connect()
        assert self.conn is not None
        # worked out before the transaction (usually every batch is new), again if not
        own = Newest.of(batches) if self.latest is not None and batches else Newest()
        rows = self.latest.take(own) if self.latest is not None else None
        committed = False
        try:
            async with self.conn.transaction():
                fresh = await self._claim(batches) if batches else []
                if len(fresh) < len(batches) and own:
                    own = Newest.of(fresh)
                    rows = self.latest.rows(own) if rows is not None else None
                prepare(fresh, self.marks_minutes)
                numeric = sum(len(b.numeric) for b in fresh)
                text = [row for b in fresh for row in b.text]
                async with self.conn.cursor() as cur:
                    if numeric:
                        data = b"".join([_HEADER, *(b.numeric_copy or b"" for b in fresh),
                                         _TRAILER])
                        await self._copy(cur, "readings", data)
                        if self.marks_minutes:
                            await self._mark_minutes(cur, fresh)
                    if text:
                        await self._copy(cur, "readings_text", text_copy_data(text))
                    if dead:
                        await cur.executemany(
                            "INSERT INTO dead_letters (topic, payload, reason, detail)"
                            " VALUES (%s, %s, %s, %s)",
                            [(d.topic, d.payload, d.reason, d.detail) for d in dead],
                        )
                    if rows:
                        # last before the commit: the rows stay locked the least time
                        await cur.execute(KEEP_LATEST, rows.params())
            committed = True
        except _TRANSIENT as err:
            await self.close()
            raise SinkUnavailable(f"database write failed: {err}") from err
        except psycopg.Error as err:
            # the transaction is rolled back; retrying the same data would fail forever
            raise StoreRejected(f"the database refused the batch: {err}") from err
        finally:
            if self.latest is not None:
                self.latest.ended(own, rows, committed)
        return StoreResult(numeric + len(text), fresh, len(batches) - len(fresh))

    async def _claim(self, batches: list[DecodedBatch]) -> list[DecodedBatch]:
        """Record the batch keys; only batches whose key is new are returned."""
        unique = {b.key: b for b in batches}
        assert self.conn is not None
        cutoff_ms = int(time.time() * 1000) - LATE_AFTER_MS
        async with self.conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO ingested_batches (gateway_id, stream, seq, readings, late)"
                " SELECT * FROM unnest(%s::text[], %s::uuid[], %s::bigint[], %s::int[],"
                " %s::int[]) ON CONFLICT DO NOTHING RETURNING gateway_id, stream::text, seq",
                (
                    [k[0] for k in unique], [k[1] for k in unique], [k[2] for k in unique],
                    [b.count for b in unique.values()],
                    [late_count(b, cutoff_ms) for b in unique.values()],
                ),
            )
            claimed = {(g, s, q) for g, s, q in await cur.fetchall()}
        return [b for k, b in unique.items() if k in claimed]

    @staticmethod
    async def _mark_minutes(cur: psycopg.AsyncCursor, fresh: list[DecodedBatch]) -> None:
        minutes = set().union(*(b.minutes for b in fresh))
        await cur.execute(
            "INSERT INTO rollup_dirty (bucket) SELECT unnest(%s::timestamptz[])",
            (minutes_of({m * 60_000 for m in minutes}),),
        )

    @staticmethod
    async def _copy(cur: psycopg.AsyncCursor, table: str, data: bytes) -> None:
        async with cur.copy(
            f"COPY {table} (time, point_id, value, quality) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            await copy.write(data)
