"""A first load too big for one worker, split by primary-key ranges into jobs (as DataX
splits by key): each range reads its own keys in keyset batches, and commits each batch with
its own resume point (`sync_ranges.done_key`), so a range worker killed with `kill -9`
resumes after its last batch: no duplicates, no gaps. The last range to finish completes the
run (key built, deletes marked, cursor left at the high-water mark taken before the load).

Ranges need a single integer key and a source that reports bounds (MariaDB/MySQL,
PostgreSQL). Run them in worker processes to use several cores: threads of one process share
one interpreter lock, and the load is CPU-bound in Python (docs/data-foundation.md)."""

from __future__ import annotations

import logging

import psycopg
from psycopg.types.json import Jsonb

from cityops.errors import Conflict, PlatformError
from datafoundation import raw
from datafoundation.runner import (
    Source,
    Spec,
    _finish,
    _spec,
    expect,
    json_safe,
    open_source,
    stream,
)
from datafoundation.sources import Page

log = logging.getLogger(__name__)
LOCK_SPACE = 15  # advisory locks of key ranges: (15, run_id * 64 + range_no)


def plan(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int) -> list[int] | None:
    """The run's unfinished ranges, made now if this is a first load to split; None when the
    run is not split (a single range, a composite or non-integer key, a keyed table)."""
    made = conn.execute("SELECT range_no, finished FROM sync_ranges WHERE run_id = %s "
                        "ORDER BY range_no", (run_id,)).fetchall()
    if made:
        return [n for n, finished in made if not finished]
    if (spec.split_ranges <= 1 or len(spec.keys) != 1 or not hasattr(source, "bounds")
            or raw.has_key(conn, raw.schema_of(spec.system), spec.target)):
        return None
    cursor = spec.cursor if spec.mode == "incremental" else None
    first, last, high_water = source.bounds(spec.table, spec.keys[0], cursor)
    try:
        first, last = int(first), int(last)
    except (TypeError, ValueError):
        return None  # empty, or a key that is not an integer: one reader
    count = min(spec.split_ranges, last - first + 1)
    step = -(-(last - first + 1) // count)
    with conn.transaction():
        for number in range(count):
            conn.execute("INSERT INTO sync_ranges (run_id, range_no, first_key, last_key) "
                         "VALUES (%s, %s, %s, %s)", (run_id, number, first + number * step,
                                                     min(last, first + (number + 1) * step - 1)))
        conn.execute("UPDATE sync_runs SET high_water = %s WHERE id = %s",
                     (None if high_water is None else str(high_water), run_id))
    expect(conn, spec, source, run_id, True)
    log.info("sync %s run %s: first load split into %d key ranges", spec.sync_id, run_id, count)
    return list(range(count))


def pending(database_url: str, run_id: int) -> list[int]:
    with psycopg.connect(database_url) as conn:
        return [r[0] for r in conn.execute("SELECT range_no FROM sync_ranges WHERE run_id = %s "
                                           "AND NOT finished ORDER BY range_no", (run_id,))]


def run_range(database_url: str, secret_key: str, sync_id: int, run_id: int,
              number: int) -> bool:
    """Load (or resume) one key range; True when it was the last and completed the run."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                            (LOCK_SPACE, run_id * 64 + number)).fetchone()[0]:
            raise Conflict(f"sync {sync_id} run {run_id} range {number} is running elsewhere")
        spec = _spec(conn, sync_id)
        first, last, done, finished = conn.execute(
            "SELECT first_key, last_key, done_key, finished FROM sync_ranges WHERE run_id = %s "
            "AND range_no = %s", (run_id, number)).fetchone()
        source = open_source(spec.source_name, spec.kind, spec.settings, spec.secret,
                             secret_key)
        try:
            source.connect()
            columns = source.columns(spec.table)
            if not finished:
                after = tuple(done) if done else (int(first) - 1,)
                reading = source.read(spec.table, columns, spec.keys, None, Page(None, after),
                                      spec.batch_rows, until=int(last))

                def save(key: list, _cursor: object) -> None:
                    conn.execute("UPDATE sync_ranges SET done_key = %s WHERE run_id = %s AND "
                                 "range_no = %s", (Jsonb(json_safe(key)), run_id, number))

                direct = not raw.has_key(conn, raw.schema_of(spec.system), spec.target)
                stream(conn, spec, source, run_id, columns, reading, direct, save)
            return _complete(conn, spec, source, run_id, number, columns)
        except PlatformError as err:
            conn.execute("UPDATE sync_runs SET error = %s WHERE id = %s",
                         (f"range {number}: {err.code}: {err.detail}", run_id))
            raise
        finally:
            source.close()


def _complete(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int, number: int,
              columns: list) -> bool:
    """Mark the range done; the last one (under the sync's state row lock, so two ranges
    ending together do not both complete the run) finishes the run."""
    with conn.transaction():
        conn.execute("SELECT 1 FROM sync_state WHERE sync_id = %s FOR UPDATE", (spec.sync_id,))
        conn.execute("UPDATE sync_ranges SET finished = true WHERE run_id = %s AND "
                     "range_no = %s", (run_id, number))
        left = conn.execute("SELECT count(*) FROM sync_ranges WHERE run_id = %s AND NOT "
                            "finished", (run_id,)).fetchone()[0]
        running = conn.execute("SELECT state = 'running' FROM sync_runs WHERE id = %s",
                               (run_id,)).fetchone()[0]
        if left or not running:
            return False
        _finish(conn, spec, source, run_id, columns)
        # the next incremental run reads from the high-water mark on (key unknown: >=)
        conn.execute("UPDATE sync_state SET cursor_value = r.high_water, cursor_key = NULL "
                     "FROM sync_runs r WHERE r.id = %s AND sync_state.sync_id = %s AND %s",
                     (run_id, spec.sync_id, spec.mode == "incremental"))
    log.info("sync %s run %s: the last key range finished the run", spec.sync_id, run_id)
    return True
