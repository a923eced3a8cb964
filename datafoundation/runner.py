"""One run of a sync: read the source in keyset batches, merge each batch into the raw layer
in the same transaction as the cursor and the run's progress (exactly-once effect: a run
killed at any point resumes after the last committed batch)."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from cityops.errors import Conflict, PlatformError, SyncRejected
from datafoundation import quarantine, raw
from datafoundation.governance import register_raw
from datafoundation.quality import after_load
from datafoundation.secrets import decrypt
from datafoundation.sources import Column, Page
from datafoundation.sources.files import FileDropSource
from datafoundation.sources.http_json import HttpJsonSource
from datafoundation.sources.mariadb import MariaDBSource
from datafoundation.sources.postgresql import PostgreSQLSource
from datafoundation.sources.sftp import SftpSource

Source = MariaDBSource | PostgreSQLSource | HttpJsonSource | FileDropSource

log = logging.getLogger(__name__)
# advisory-lock key space of sync runs: held on the run's connection, so a killed worker's
# lock goes with its connection and another worker may resume at once
LOCK_SPACE = 14


@contextmanager
def prefetch(batches: Iterator[list[tuple]]) -> Iterator[Iterator[list[tuple]]]:
    """The next batch is read from the source while this one is written: both drivers wait
    on sockets outside the GIL, so reading and writing overlap. Only the reading is ahead;
    what commits (rows with their cursor) is unchanged. On leaving, the reader is stopped and
    joined before the caller closes the source's connection."""
    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop, done = threading.Event(), object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer, raised there
            put(err)

    def consume() -> Iterator[list[tuple]]:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item

    reader = threading.Thread(target=pump, name="sync-read", daemon=True)
    reader.start()
    try:
        yield consume()
    finally:
        stop.set()
        reader.join()


@dataclass
class Spec:
    sync_id: int
    source_name: str
    kind: str
    settings: dict
    secret: bytes | None
    system: str
    table: str
    target: str
    mode: str
    cursor: str | None
    keys: list[str]
    deletes: str
    soft_column: str | None
    contract: str
    batch_rows: int
    split_ranges: int = 1

    @property
    def where(self) -> str:
        return f"source {self.source_name}, table {self.table}"


def _spec(conn: psycopg.Connection, sync_id: int) -> Spec:
    row = conn.execute(
        "SELECT so.name, so.kind, so.settings, so.secret, sy.slug, s.object, s.target_table, "
        "s.mode, s.cursor_column, s.primary_key, s.deletes, s.soft_delete_column, s.contract, "
        "s.batch_rows, s.split_ranges FROM syncs s JOIN sources so ON so.id = s.source_id "
        "JOIN systems sy ON sy.id = so.system_id WHERE s.id = %s", (sync_id,)).fetchone()
    if row is None:
        raise SyncRejected(f"sync {sync_id} does not exist")
    return Spec(sync_id, *row)


def open_source(name: str, kind: str, settings: dict, secret: bytes | None,
                secret_key: str) -> Source:
    # SQLAlchemy is imported only for such a source: it costs every sync process's start
    from datafoundation.sources.sqlalchemy_url import SqlAlchemySource

    readers = {"mariadb": MariaDBSource, "mysql": MariaDBSource,
               "postgresql": PostgreSQLSource, "http_json": HttpJsonSource,
               "file_drop": FileDropSource, "sftp": SftpSource, "sqlalchemy": SqlAlchemySource}
    if kind not in readers:
        raise SyncRejected(f"source {name}: kind {kind} has no reader yet")
    return readers[kind](name, settings, decrypt(secret_key, secret))


def _begin(conn: psycopg.Connection, spec: Spec) -> tuple[int, dict]:
    """The run to work in: the interrupted one if any (a killed or failed run resumes), else a
    new one. Returns it with the sync's state."""
    with conn.transaction():
        conn.execute("INSERT INTO sync_state (sync_id) VALUES (%s) ON CONFLICT DO NOTHING",
                     (spec.sync_id,))
        cursor, ckey, columns, run_id = conn.execute(
            "SELECT cursor_value, cursor_key, columns, run_id FROM sync_state WHERE sync_id = %s "
            "FOR UPDATE", (spec.sync_id,)).fetchone()
        if run_id is not None:
            conn.execute("UPDATE sync_runs SET state = 'running', attempt = attempt + 1, "
                         "error = NULL, finished_at = NULL WHERE id = %s", (run_id,))
        else:
            run_id = conn.execute("INSERT INTO sync_runs (sync_id) VALUES (%s) RETURNING id",
                                  (spec.sync_id,)).fetchone()[0]
            conn.execute("UPDATE sync_state SET run_id = %s WHERE sync_id = %s",
                         (run_id, spec.sync_id))
    return run_id, {"cursor": cursor, "key": ckey, "columns": columns}


def _prepare(conn: psycopg.Connection, spec: Spec, run_id: int, columns: list[Column],
             previous: list[dict] | None) -> None:
    names = [c.name for c in columns]
    for role, name in (*(("key", k) for k in spec.keys), ("cursor", spec.cursor),
                       ("soft-delete column", spec.soft_column)):
        if name is not None and name not in names:
            raise SyncRejected(f"{spec.where}: {role} {name} is not a column of the source")
    changes = raw.drift(previous, columns)
    schema = raw.schema_of(spec.system)
    with conn.transaction():
        if changes and spec.contract == "freeze":
            conn.execute("UPDATE syncs SET flagged = %s WHERE id = %s",
                         (f"schema drift: {changes}", spec.sync_id))
            conn.execute("UPDATE sync_runs SET drift = %s WHERE id = %s",
                         (Jsonb(changes), run_id))
        else:
            # a new table is a first load: no index until it is loaded (build_key)
            raw.ensure_table(conn, schema, spec.target, columns, spec.keys, keyed=False)
            raw.evolve(conn, schema, spec.target, columns, changes)
            conn.execute("UPDATE sync_state SET columns = %s WHERE sync_id = %s",
                         (Jsonb([c.__dict__ for c in columns]), spec.sync_id))
            conn.execute("UPDATE sync_runs SET drift = %s WHERE id = %s",
                         (Jsonb(changes) if changes else None, run_id))
    if changes and spec.contract == "freeze":
        raise SyncRejected(f"{spec.where}: schema drift under a frozen contract: {changes}; "
                           "the sync is flagged and stopped until the contract is changed")
    if changes:
        log.warning("sync %s: schema drift evolved: %s", spec.sync_id, changes)


def _resume_key(state: dict) -> tuple | None:
    key = (state["key"] or {}).get("key")
    if key is None:
        return None
    return tuple(key) if isinstance(key, list) else (key,)  # a scalar from before composites


def _load(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int,
          columns: list[Column], state: dict) -> None:
    schema = raw.schema_of(spec.system)
    _set_aside_nulls(conn, spec, source, run_id, columns)
    page = Page(state["cursor"] if spec.mode == "incremental" else None, _resume_key(state))
    # a first load (the table has no key yet) has nothing to merge with: rows go straight in
    direct = not raw.has_key(conn, schema, spec.target)
    expect(conn, spec, source, run_id, direct)
    reading = source.read(spec.table, columns, spec.keys, spec.cursor, page, spec.batch_rows)

    def save(key: list, cursor: object) -> None:
        conn.execute("UPDATE sync_state SET cursor_value = COALESCE(%s, cursor_value), "
                     "cursor_key = %s, updated_at = now() WHERE sync_id = %s",
                     (None if cursor is None else str(cursor), Jsonb({"key": json_safe(key)}),
                      spec.sync_id))

    stream(conn, spec, source, run_id, columns, reading, direct, save)


def expect(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int,
           whole: bool) -> None:
    """Record the rows a first or full load will read (the source's estimate), for the
    progress stream's seconds left; an incremental pass cannot know its count cheaply."""
    estimate = getattr(source, "estimate", None)
    if estimate is not None and (whole or spec.mode == "full"):
        conn.execute("UPDATE sync_runs SET rows_expected = %s WHERE id = %s",
                     (estimate(spec.table), run_id))


def json_safe(values: list) -> list:
    """Key values as JSON keeps them: drivers' dates and decimals as their text."""
    return [v if v is None or isinstance(v, str | int | float) else str(v) for v in values]


def stream(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int,
           columns: list[Column], reading: Iterator[list[tuple]], direct: bool,
           save: Callable[[list, object], None]) -> None:
    """Commit each batch read with its resume point (`save`, called inside the batch's
    transaction): the sync's cursor, or a key range's own (datafoundation/split.py)."""
    schema = raw.schema_of(spec.system)
    names = [c.name for c in columns]
    index = [names.index(k) for k in spec.keys]
    ci = names.index(spec.cursor) if spec.cursor and spec.cursor in names else None
    repeats = _repeats(spec, source)
    with prefetch(reading) as batches:
        for rows in batches:
            aside: quarantine.Aside = []
            if ci is not None:
                dated = [r for r in rows if r[ci] is not None]
                aside = [(r, f"cursor column {spec.cursor} is NULL") for r in rows
                         if r[ci] is None]
            else:
                dated = rows
            last = dated[-1] if dated else rows[-1]
            _commit_batch(conn, spec, schema, columns, rows, dated, aside, run_id, direct,
                          repeats, lambda last=last: save(
                              [last[i] for i in index], last[ci] if ci is not None else None))


def _set_aside_nulls(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int,
                     columns: list[Column], cursor: bool = True) -> None:
    """Rows with a NULL key part or cursor: a keyset read never reaches them, so they are set
    aside (again on every run until the source is fixed: the data bureau sees them)."""
    checks = [(k, f"primary key column {k} is NULL") for k in spec.keys]
    if spec.mode == "incremental" and cursor:  # (a key range reads and sets them aside)
        checks.append((spec.cursor, f"cursor column {spec.cursor} is NULL: an incremental "
                                    "sync would never read this row"))
    aside: quarantine.Aside = []
    for column, reason in checks:
        aside += [(row, reason) for row in source.null_rows(spec.table, columns, column,
                                                            spec.keys)]
    if aside:
        with conn.transaction():
            _progress(conn, spec, run_id, columns, len(aside), 0, 0, aside)


def _repeats(spec: Spec, source: Source):
    """How a key met again in this run is judged: in a full run it is a duplicate (each key
    is read once); in an incremental run it may be a row changed meanwhile, so the source is
    asked which of them more than one row holds (sources that cannot say: the later wins)."""
    if spec.mode == "full":
        return None
    counts = getattr(source, "key_counts", None)
    if counts is None:
        return lambda found: set()
    return lambda found: counts(spec.table, spec.keys, found)


def _progress(conn: psycopg.Connection, spec: Spec, run_id: int, columns: list[Column],
              read: int, written: int, deleted: int, aside: quarantine.Aside) -> None:
    held = quarantine.set_aside(conn, spec.sync_id, run_id, spec.source_name, spec.table,
                                columns, aside)
    conn.execute("UPDATE sync_runs SET rows_read = rows_read + %s, rows_written = "
                 "rows_written + %s, rows_deleted = rows_deleted + %s, rows_quarantined = "
                 "rows_quarantined + %s WHERE id = %s",
                 (read, written, deleted, held, run_id))


def _commit_batch(conn: psycopg.Connection, spec: Spec, schema: str, columns: list[Column],
                  rows: list[tuple], good: list[tuple], aside: quarantine.Aside, run_id: int,
                  direct: bool, repeats, save: Callable[[], None]) -> None:
    """One batch, its cursor, its set-aside rows and the run's progress: one transaction,
    all or nothing."""
    with conn.transaction():
        written, refused = raw.merge(conn, schema, spec.target, columns, spec.keys, good,
                                     run_id, direct, repeats)
        deleted = (raw.mark_soft_deleted(conn, schema, spec.target, spec.soft_column, run_id)
                   if spec.deletes == "soft" else 0)
        save()
        _progress(conn, spec, run_id, columns, len(rows), written, deleted, aside + refused)
        if aside or refused:
            log.warning("sync %s run %s: %d rows set aside (%s)", spec.sync_id, run_id,
                        len(aside) + len(refused), (aside + refused)[0][1])


def _finish(conn: psycopg.Connection, spec: Spec, source: Source, run_id: int,
            columns: list[Column]) -> None:
    schema = raw.schema_of(spec.system)
    with conn.transaction():
        if not raw.has_key(conn, schema, spec.target):
            aside = raw.build_key(conn, schema, spec.target, columns, spec.keys,
                                  _repeats(spec, source))
            _progress(conn, spec, run_id, columns, 0, -len(aside), 0, aside)
        deleted = 0
        if spec.mode == "full":
            deleted = raw.mark_not_in_run(conn, schema, spec.target, spec.keys, run_id)
        elif spec.deletes == "compare":
            deleted = raw.mark_missing(conn, schema, spec.target, spec.keys,
                                       source.keys(spec.table, spec.keys))
        conn.execute("UPDATE sync_state SET run_id = NULL, cursor_key = CASE WHEN %s = 'full' "
                     "THEN NULL ELSE cursor_key END WHERE sync_id = %s",
                     (spec.mode, spec.sync_id))
        conn.execute("UPDATE sync_runs SET state = 'succeeded', finished_at = now(), "
                     "rows_deleted = rows_deleted + %s WHERE id = %s", (deleted, run_id))
        register_raw(conn, spec.sync_id)  # the raw table as a governed dataset


def run_sync(database_url: str, secret_key: str, sync_id: int, here: bool = True) -> int:
    """Run (or resume) one sync; returns the run id. A failure is recorded on the run, with
    what was committed before it kept, and raised. A first load split by key ranges
    (`syncs.split_ranges`) runs its ranges here one after the other, or, `here=False`, only
    plans them for the caller to queue (split.pending lists them)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                            (LOCK_SPACE, sync_id)).fetchone()[0]:
            raise Conflict(f"sync {sync_id} is running in another worker")
        spec = _spec(conn, sync_id)
        run_id, state = _begin(conn, spec)
        source = open_source(spec.source_name, spec.kind, spec.settings, spec.secret,
                             secret_key)
        try:
            source.connect()
            columns = source.columns(spec.table)
            _prepare(conn, spec, run_id, columns, state["columns"])
            from datafoundation import split  # (split builds on this module)

            ranges = split.plan(conn, spec, source, run_id)
            if ranges is not None:
                _set_aside_nulls(conn, spec, source, run_id, columns, cursor=False)
                if not here:
                    return run_id  # the caller queues one job per range
                for number in ranges:
                    split.run_range(database_url, secret_key, sync_id, run_id, number)
                return run_id
            _load(conn, spec, source, run_id, columns, state)
            _finish(conn, spec, source, run_id, columns)
        except PlatformError as err:
            conn.execute("UPDATE sync_runs SET state = 'failed', finished_at = now(), "
                         "error = %s WHERE id = %s", (f"{err.code}: {err.detail}", run_id))
            log.warning("sync %s run %s failed: %s", sync_id, run_id, err.detail)
            raise
        finally:
            source.close()
    # the raw table's quality rules, now the load is committed (a quality failure is logged)
    after_load(database_url, f"{raw.schema_of(spec.system)}.{spec.target}", "sync")
    return run_id
