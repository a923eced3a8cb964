"""Log-based change capture from a MariaDB/MySQL binlog (the only pymysqlreplication import):
each row event is merged into the raw layer in one transaction with the binlog position, so a
killed follower resumes at the last applied event: nothing twice, nothing lost.

The source's owner must grant REPLICATION SLAVE and REPLICATION CLIENT and run with
binlog_format=ROW and binlog_row_metadata=FULL (column names in the events). The table is
loaded first by a full or incremental run; the follower starts at the binlog's end on its
first start (changes during that first load are caught by running the load after starting
the follower: the merge is idempotent)."""

from __future__ import annotations

import logging
import threading

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from cityops.errors import SyncRejected
from datafoundation import quarantine, raw
from datafoundation.runner import Spec, _spec, open_source
from datafoundation.secrets import decrypt
from datafoundation.sources import Column

log = logging.getLogger(__name__)


def _position(conn: psycopg.Connection, sync_id: int) -> tuple[str, int] | None:
    row = conn.execute("SELECT cursor_key FROM sync_state WHERE sync_id = %s",
                       (sync_id,)).fetchone()
    binlog = (row[0] or {}).get("binlog") if row else None
    return (binlog[0], int(binlog[1])) if binlog else None


def _save(conn: psycopg.Connection, sync_id: int, file: str, pos: int) -> None:
    conn.execute("INSERT INTO sync_state (sync_id, cursor_key) VALUES (%s, %s) ON CONFLICT "
                 "(sync_id) DO UPDATE SET cursor_key = EXCLUDED.cursor_key, updated_at = now()",
                 (sync_id, Jsonb({"binlog": [file, pos]})))


LOCK_SPACE = 16  # advisory lock (16, sync_id): one follower per cdc sync among all workers


def follow(database_url: str, secret_key: str, sync_id: int, stop: threading.Event,
           idle_s: float = 0.1) -> bool:
    """Apply the table's row events until `stop` is set; False at once when another process
    follows this sync (its lock goes with its connection, so a dead follower's is free)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                            (LOCK_SPACE, sync_id)).fetchone()[0]:
            return False
        spec = _spec(conn, sync_id)
        if spec.kind not in ("mariadb", "mysql"):
            raise SyncRejected(f"{spec.where}: binlog capture needs a MariaDB/MySQL source")
        source = open_source(spec.source_name, spec.kind, spec.settings, spec.secret,
                             secret_key)
        source.connect()
        columns = source.columns(spec.table)
        position = _position(conn, sync_id)
        if position is None:
            file, pos = source._query("SHOW MASTER STATUS", (), "binlog")[0][:2]
            position = (file, int(pos))
            _save(conn, sync_id, *position)
        source.close()
        schema = raw.schema_of(spec.system)
        raw.ensure_table(conn, schema, spec.target, columns, spec.keys)
        s = spec.settings
        settings = {"host": s.get("host", "127.0.0.1"), "port": int(s.get("port", 3306)),
                    "user": s.get("user", ""),
                    "password": decrypt(secret_key, spec.secret).get("password", "")}
        while not stop.is_set():
            # plain file/position dump (is_mariadb would switch to GTIDs and ignore them)
            stream = BinLogStreamReader(
                connection_settings=settings, server_id=100000 + sync_id, blocking=False,
                resume_stream=True, log_file=position[0], log_pos=position[1],
                only_schemas=[s["database"]], only_tables=[spec.table],
                only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent])
            try:
                for event in stream:
                    position = (stream.log_file, stream.log_pos)
                    _apply(conn, spec, schema, columns, event, position)
                # the stream ends where the log ends; its position covers skipped events too
                if stream.log_file and stream.log_pos:
                    position = (stream.log_file, stream.log_pos)
            finally:
                stream.close()
            stop.wait(idle_s)
    return True


def _apply(conn: psycopg.Connection, spec: Spec, schema: str, columns: list[Column],
           event: object, position: tuple[str, int]) -> None:
    """One row event and the position after it: one transaction."""
    with conn.transaction():
        if isinstance(event, DeleteRowsEvent):
            keys = [raw.key_text([r["values"][k] for k in spec.keys]) for r in event.rows]
            conn.execute(sql.SQL("UPDATE {}.{} SET _deleted_at = now() WHERE {} = "
                                 "ANY(%s)").format(sql.Identifier(schema),
                                                   sql.Identifier(spec.target),
                                                   raw.joined(spec.keys)), (keys,))
        else:
            after = "after_values" if isinstance(event, UpdateRowsEvent) else "values"
            rows = [tuple(r[after].get(c.name) for c in columns) for r in event.rows]
            # every event is the newest state of its row: a key met again is an update
            _written, aside = raw.merge(conn, schema, spec.target, columns, spec.keys, rows, 0,
                                        repeats=lambda found: set())
            if aside:  # a bad value: set aside, the follower goes on
                quarantine.set_aside(conn, spec.sync_id, None, spec.source_name, spec.table,
                                     columns, aside)
        _save(conn, spec.sync_id, *position)
