"""The raw layer (贴源层): one schema per source system, tables named after the source, rows
merged on the key; bookkeeping columns say when a row was synced and when it vanished."""

from __future__ import annotations

import psycopg
from psycopg import sql

from cityops.errors import SyncRejected
from datafoundation.sources import Column

BOOKKEEPING = ("_synced_at", "_run_id", "_deleted_at")


def schema_of(system_slug: str) -> str:
    return f"raw_{system_slug}"


def ensure_table(conn: psycopg.Connection, schema: str, table: str, columns: list[Column],
                 key: str) -> None:
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cols = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns]
    cols += [sql.SQL("_synced_at timestamptz NOT NULL DEFAULT now()"),
             sql.SQL("_run_id bigint"), sql.SQL("_deleted_at timestamptz"),
             sql.SQL("PRIMARY KEY ({})").format(sql.Identifier(key))]
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(
        sql.Identifier(schema), sql.Identifier(table), sql.SQL(", ").join(cols)))


def drift(previous: list[dict] | None, current: list[Column]) -> dict[str, list]:
    """New, dropped and retyped columns since the last run (nothing on a first run)."""
    if previous is None:
        return {}
    before = {c["name"]: c["pg_type"] for c in previous}
    now = {c.name: c.pg_type for c in current}
    found = {
        "added": [n for n in now if n not in before],
        "dropped": [n for n in before if n not in now],
        "retyped": [[n, before[n], now[n]] for n in now if n in before and before[n] != now[n]],
    }
    return {k: v for k, v in found.items() if v}


def evolve(conn: psycopg.Connection, schema: str, table: str, columns: list[Column],
           changes: dict[str, list]) -> None:
    """Apply drift without losing data: new columns are added; a dropped column stays (its
    history is kept, new rows leave it NULL); a retyped column becomes text, which holds both
    the old values and the new."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    types = {c.name: c.pg_type for c in columns}
    for name in changes.get("added", []):
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
            target, sql.Identifier(name), sql.SQL(types[name])))
    for name, _old, _new in changes.get("retyped", []):
        conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE text USING {}::text").format(
            target, sql.Identifier(name), sql.Identifier(name)))


def retyped_to_text(conn: psycopg.Connection, schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND "
        "table_name = %s AND data_type = 'text'", (schema, table)).fetchall()
    return {r[0] for r in rows}


def is_empty(conn: psycopg.Connection, schema: str, table: str) -> bool:
    return conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {}.{})").format(
        sql.Identifier(schema), sql.Identifier(table))).fetchone()[0]


def merge(conn: psycopg.Connection, schema: str, table: str, columns: list[Column], key: str,
          rows: list[tuple], run_id: int, where: str, direct: bool = False) -> int:
    """Upsert one batch: COPY into a staging table, then one INSERT .. ON CONFLICT; `direct`
    (the run began on an empty table, and keyset batches never repeat a key) COPYs straight
    into the table. A key seen twice in the batch stops the run naming it (merging would keep
    one silently)."""
    ki = [c.name for c in columns].index(key)
    seen: set = set()
    for row in rows:
        if row[ki] in seen:
            raise SyncRejected(f"{where}: key {key}={row[ki]!r} appears twice in one batch; "
                               "the sync's primary key is not unique in the source")
        seen.add(row[ki])
    names = [sql.Identifier(c.name) for c in columns]
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    if direct:
        with conn.cursor().copy(sql.SQL("COPY {} ({}, _run_id) FROM STDIN").format(
                target, sql.SQL(", ").join(names))) as copy:
            for row in rows:
                copy.write_row((*row, run_id))
        return len(rows)
    # AS ... WITH NO DATA: the target's types without its NOT NULLs (bookkeeping comes later)
    conn.execute(sql.SQL("CREATE TEMP TABLE _stage ON COMMIT DROP AS SELECT * FROM {} "
                         "WITH NO DATA").format(target))
    with conn.cursor().copy(sql.SQL("COPY _stage ({}) FROM STDIN").format(
            sql.SQL(", ").join(names))) as copy:
        for row in rows:
            copy.write_row(row)
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(n, n) for n in names if n.as_string(conn) != key)
    cur = conn.execute(sql.SQL(
        "INSERT INTO {t} ({cols}, _synced_at, _run_id, _deleted_at) "
        "SELECT {cols}, now(), %s, NULL FROM _stage "
        "ON CONFLICT ({k}) DO UPDATE SET {u}, _synced_at = now(), _run_id = EXCLUDED._run_id, "
        "_deleted_at = NULL").format(t=target, cols=sql.SQL(", ").join(names),
                                     k=sql.Identifier(key), u=updates), (run_id,))
    return cur.rowcount


def mark_missing(conn: psycopg.Connection, schema: str, table: str, key: str,
                 source_keys: list) -> int:
    """Key comparison: rows the source no longer has are marked deleted, never removed."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur = conn.execute(sql.SQL(
        "UPDATE {t} SET _deleted_at = now() WHERE _deleted_at IS NULL AND NOT ({k}::text = "
        "ANY(%s))").format(t=target, k=sql.Identifier(key)), ([str(k) for k in source_keys],))
    return cur.rowcount


def mark_soft_deleted(conn: psycopg.Connection, schema: str, table: str, column: str,
                      run_id: int) -> int:
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur = conn.execute(sql.SQL(
        "UPDATE {t} SET _deleted_at = now() WHERE _run_id = %s AND _deleted_at IS NULL AND "
        "COALESCE({c}::text, '') NOT IN ('', '0', 'false', 'f')").format(
            t=target, c=sql.Identifier(column)), (run_id,))
    return cur.rowcount


def mark_not_in_run(conn: psycopg.Connection, schema: str, table: str, run_id: int) -> int:
    """After a full load: rows the run did not see are gone from the source."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur = conn.execute(sql.SQL("UPDATE {t} SET _deleted_at = now() WHERE _deleted_at IS NULL "
                               "AND _run_id IS DISTINCT FROM %s").format(t=target), (run_id,))
    return cur.rowcount
