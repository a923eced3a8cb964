"""The latest-value table (readings_latest, migration 090), kept by the stores' transactions.

Written at most every `every_ms` per worker instead of by every store: a store upserts one row
per point it carries, and at 100 000 readings/s in 20-ms flushes over a few thousand points
that is nearly one row update per reading (the worker built the rows, the database updated
them, and two stores at once waited on each other's row locks). Each store now merges the
newest reading of each of its points into `pending` once it has committed; the first store
that begins after `every_ms` takes the pending set (merged with its own newest) and upserts it
as the last statement of its own transaction; when ingestion goes quiet, the worker writes
the pending set in a transaction of its own (ingestion/consumer.py). So a row is at most
`every_ms` plus one store behind the readings, and never ahead of them: only committed
readings (or the writing store's own) are ever written.

What is lost if the worker dies: the pending rows (at most `every_ms` of the newest readings);
the readings themselves are committed. `repair` (readings_latest_refresh over every point,
one index probe each) runs at each worker's start; until then, or until the point's next
reading, its row shows an older reading. `every_ms` = 0: every store writes its own rows.
"""

from __future__ import annotations

import time
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingestion.decode import DecodedBatch

# One row per point, in point order (two writers wait for each other instead of deadlocking);
# `WHERE excluded.time > l.time`: a late or out-of-order batch never moves a point back.
KEEP_LATEST = """INSERT INTO readings_latest AS l (point_id, time, value, text, quality)
    SELECT p, timestamptz 'epoch' + ms * interval '1 millisecond', v, t, q
    FROM unnest(%s::int[], %s::bigint[], %s::float8[], %s::text[], %s::int2[])
        AS u(p, ms, v, t, q)
    ON CONFLICT (point_id) DO UPDATE SET time = excluded.time, value = excluded.value,
        text = excluded.text, quality = excluded.quality
    WHERE excluded.time > l.time"""

_BY_TIME = itemgetter(0)
Row = tuple  # (ts_ms, point_id, value or text, quality), as the decoder makes them


class Newest:
    """The newest reading of each point: numeric and text rows apart (a point is one kind)."""

    __slots__ = ("numeric", "text")

    def __init__(self, numeric: dict[int, Row] | None = None,
                 text: dict[int, Row] | None = None) -> None:
        self.numeric = numeric if numeric is not None else {}
        self.text = text if text is not None else {}

    @classmethod
    def of(cls, batches: list[DecodedBatch]) -> Newest:
        """A stable sort by time, then a dict by point keeps each point's newest (the last of
        equal times); rows mostly arrive in time order, which the sort finds in one pass."""
        return cls({r[1]: r for r in sorted(chain.from_iterable(b.numeric for b in batches),
                                            key=_BY_TIME)},
                   {r[1]: r for r in sorted(chain.from_iterable(b.text for b in batches),
                                            key=_BY_TIME)})

    def __bool__(self) -> bool:
        return bool(self.numeric or self.text)

    def __len__(self) -> int:
        return len(self.numeric) + len(self.text)

    def merge(self, other: Newest) -> None:
        """Take the other's rows where they are newer (or the point is new here)."""
        for mine, theirs in ((self.numeric, other.numeric), (self.text, other.text)):
            if not mine:
                mine.update(theirs)
                continue
            get = mine.get
            for point, row in theirs.items():
                old = get(point)
                if old is None or row[0] >= old[0]:
                    mine[point] = row

    def copy(self) -> Newest:
        return Newest(dict(self.numeric), dict(self.text))

    def forget(self, written: Newest) -> None:
        """Drop the rows that `written` holds, unless a newer row replaced them meanwhile."""
        for mine, theirs in ((self.numeric, written.numeric), (self.text, written.text)):
            for point, row in theirs.items():
                if mine.get(point) is row:
                    del mine[point]

    def params(self) -> list[str | None]:
        """The parameters of KEEP_LATEST, the arrays as literals made here: psycopg's
        adaptation of lists cost about 4 us per element; str() of a float is its shortest
        exact form."""
        numeric, text = self.numeric, self.text
        points = sorted(numeric.keys() | text.keys())
        rows = [numeric.get(p) or text[p] for p in points]
        values = ",".join("NULL" if p not in numeric or r[2] is None else str(r[2])
                          for p, r in zip(points, rows, strict=True))
        texts = ("{" + ",".join(_quoted(None if p in numeric else text[p][2])
                                for p in points) + "}") if text else None
        return [_array(points), _array([r[0] for r in rows]), "{" + values + "}", texts,
                _array([r[3] for r in rows])]


def _array(ints: list[int]) -> str:
    return "{" + ",".join(map(str, ints)) + "}"


def _quoted(text: str | None) -> str:
    """An element of a text array literal: double-quoted, backslash and quote escaped."""
    if text is None:
        return "NULL"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class LatestKeeper:
    """The pending newest rows of one worker, shared by its stores (one event loop: no
    locks; only one store at a time writes)."""

    def __init__(self, every_ms: int = 0) -> None:
        self.every_s = every_ms / 1000
        self.pending = Newest()
        self._written_at = float("-inf")  # monotonic
        self._writing = False

    def due(self) -> bool:
        return (not self._writing and bool(self.pending)
                and time.monotonic() - self._written_at >= self.every_s)

    def hurry(self) -> None:
        """Let the next store write (a clean stop writes what is pending)."""
        self._written_at = float("-inf")

    def take(self, own: Newest) -> Newest | None:
        """Before a store's transaction: what it writes (the pending rows with its own
        merged), or None if another store writes or one wrote less than `every_ms` ago."""
        if self._writing or time.monotonic() - self._written_at < self.every_s:
            return None
        if not (self.pending or own):
            return None
        self._writing = True
        return self.rows(own)

    def rows(self, own: Newest) -> Newest:
        """The pending rows with `own` merged (a store that took the write and then found
        some of its batches already stored asks again with the fresh ones)."""
        if not self.pending:
            return own
        rows = self.pending.copy()
        rows.merge(own)
        return rows

    def ended(self, own: Newest, written: Newest | None, committed: bool) -> None:
        """After the store's transaction: its own rows become pending unless it wrote them;
        what it wrote leaves the pending set (a failed write leaves it there)."""
        if written is not None:
            self._writing = False
            if committed:
                self._written_at = time.monotonic()
                self.pending.forget(written)
                return
        if committed and own:
            self.pending.merge(own)


REPAIR_POINTS = 1000  # points per statement: its row locks are held until it ends


async def repair(database_url: str) -> int:
    """Rows moved forward by re-reading every point's newest reading (one index probe each):
    what a worker that died held pending. Run at a worker's start, on a connection of its
    own, a thousand points per statement (each holds its rows' locks until it ends, and a
    store's upsert of those points waits for them); never moves a row back."""
    import psycopg

    moved, after = 0, 0
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT max(id), readings_latest_refresh(array_agg(id)) FROM"
                " (SELECT id FROM points WHERE id > %s ORDER BY id LIMIT %s) p",
                (after, REPAIR_POINTS))
            row = await cur.fetchone()
            if row is None or row[0] is None:
                return moved
            after, moved = row[0], moved + int(row[1] or 0)
