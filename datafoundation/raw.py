"""The raw layer (贴源层): one schema per source system, tables named after the source, rows
merged on the key; bookkeeping columns say when a row was synced and when it vanished."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg
import psycopg.errors
from psycopg import sql

from datafoundation.quarantine import Aside, bad_keys, copy_sparing, describe
from datafoundation.sources import Column

BOOKKEEPING = ("_synced_at", "_run_id", "_deleted_at")


def schema_of(system_slug: str) -> str:
    return f"raw_{system_slug}"


def _key_list(keys: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(k) for k in keys)


def ensure_table(conn: psycopg.Connection, schema: str, table: str, columns: list[Column],
                 keys: list[str], keyed: bool = True) -> None:
    """The raw table if missing. `keyed=False` (a first load) leaves the primary key out: rows
    are COPY'd without maintaining an index, and build_key adds it once loaded."""
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cols = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns]
    cols += [sql.SQL("_synced_at timestamptz NOT NULL DEFAULT now()"),
             sql.SQL("_run_id bigint"), sql.SQL("_deleted_at timestamptz")]
    if keyed:
        cols.append(sql.SQL("PRIMARY KEY ({})").format(_key_list(keys)))
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


def has_key(conn: psycopg.Connection, schema: str, table: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_index WHERE indisprimary AND "
                        "indrelid = to_regclass(%s))",
                        (sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                         .as_string(conn),)).fetchone()[0]


def build_key(conn: psycopg.Connection, schema: str, table: str, columns: list[Column],
              keys: list[str], repeats: Callable[[list[tuple]], set[tuple]] | None) -> Aside:
    """After a first load without an index: add the primary key. Keys held more than once are
    sorted out first, only when adding it fails (a clean load pays one index build): for a
    duplicate in the source (all of them in a full load; those `repeats` confirms in an
    incremental one) the later copies are set aside; otherwise the key is one row read again
    after it changed, and its newest copy stays."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    add = sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(target, _key_list(keys))
    try:
        with conn.transaction():
            conn.execute(add)
        return []
    except psycopg.errors.UniqueViolation:
        pass
    found = conn.execute(sql.SQL("SELECT {ks} FROM {t} GROUP BY {k} HAVING count(*) > 1").format(
        ks=sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(k)) for k in keys),
        t=target, k=_key_list(keys))).fetchall()
    dupes = set(found) if repeats is None else repeats(found)
    later = sql.SQL(
        "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM (SELECT ctid, {j} AS key, "
        "row_number() OVER (PARTITION BY {k} ORDER BY {o}) AS n FROM {t}) c WHERE n > 1 AND "
        "key = ANY(%s)) RETURNING {cols}")
    cols = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    set_aside = conn.execute(later.format(t=target, j=joined(keys), k=_key_list(keys),
                                          o=sql.SQL("_synced_at, ctid"), cols=cols),
                             ([key_text(k) for k in dupes],)).fetchall()
    newest = [key_text(k) for k in found if k not in dupes]
    conn.execute(later.format(t=target, j=joined(keys), k=_key_list(keys),
                              o=sql.SQL("_synced_at DESC, ctid DESC"), cols=cols), (newest,))
    conn.execute(add)
    index = [[c.name for c in columns].index(k) for k in keys]
    return [(row, f"key {describe(keys, [row[i] for i in index])} is held by more than one "
                  "row in the source: the later copy is set aside") for row in set_aside]


def merge(conn: psycopg.Connection, schema: str, table: str, columns: list[Column],
          keys: list[str], rows: list[tuple], run_id: int, direct: bool = False,
          repeats: Callable[[list[tuple]], set[tuple]] | None = None) -> tuple[int, Aside]:
    """Upsert one batch: COPY into a staging table, then one INSERT .. ON CONFLICT; `direct`
    (the run began on an empty table, and keyset batches never repeat a key) COPYs straight
    into the table. Rows that cannot load (NULL or repeated key, a value the column's type
    refuses) are returned set aside with the reason; the rest is written. A key an earlier
    batch of this run wrote is a duplicate unless `repeats` (given the repeated keys) says
    which of them are (an incremental run may meet a row again that changed meanwhile)."""
    rows, aside = bad_keys(columns, keys, rows)
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    if direct:
        copy_sql = sql.SQL("COPY {} ({}, _run_id) FROM STDIN").format(target, names)

        def write(chunk: Sequence[tuple]) -> None:
            with conn.cursor().copy(copy_sql) as copy:
                for row in chunk:
                    copy.write_row((*row, run_id))

        repeated: list[tuple] = []
        refused = copy_sparing(conn, write, rows, repeated)
        written = len(rows) - len(refused) - len(repeated)
        if repeated:  # a key an earlier batch wrote: merged, or set aside as a duplicate
            more, refused_more = merge(conn, schema, table, columns, keys, repeated, run_id,
                                       False, repeats)
            written, refused = written + more, refused + refused_more
        return written, aside + refused
    # AS ... WITH NO DATA: the target's types without its NOT NULLs (bookkeeping comes later)
    conn.execute(sql.SQL("CREATE TEMP TABLE _stage ON COMMIT DROP AS SELECT * FROM {} "
                         "WITH NO DATA").format(target))
    stage_sql = sql.SQL("COPY _stage ({}) FROM STDIN").format(names)

    def stage(chunk: Sequence[tuple]) -> None:
        with conn.cursor().copy(stage_sql) as copy:
            for row in chunk:
                copy.write_row(row)

    aside += copy_sparing(conn, stage, rows)
    aside += _drop_repeats(conn, target, columns, keys, run_id, repeats)
    key_names = {sql.Identifier(k).as_string(conn) for k in keys}
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c.name), sql.Identifier(c.name))
        for c in columns if sql.Identifier(c.name).as_string(conn) not in key_names)
    cur = conn.execute(sql.SQL(
        "INSERT INTO {t} ({cols}, _synced_at, _run_id, _deleted_at) "
        "SELECT {cols}, now(), %s, NULL FROM _stage "
        "ON CONFLICT ({k}) DO UPDATE SET {u}, _synced_at = now(), _run_id = EXCLUDED._run_id, "
        "_deleted_at = NULL").format(t=target, cols=names, k=_key_list(keys), u=updates),
        (run_id,))
    return cur.rowcount, aside


def joined(keys: list[str], alias: str = "") -> sql.Composable:
    """The key as one text value (parts joined by chr(31)): compares keys of any arity and
    any type against values from the source."""
    prefix = sql.SQL(f"{alias}." if alias else "")
    return sql.SQL(" || chr(31) || ").join(
        sql.SQL("{}{}::text").format(prefix, sql.Identifier(k)) for k in keys)


def key_text(values: Sequence) -> str:
    return "\x1f".join(str(v) for v in values)


def _drop_repeats(conn: psycopg.Connection, target: sql.Composable, columns: list[Column],
                  keys: list[str], run_id: int,
                  repeats: Callable[[list[tuple]], set[tuple]] | None) -> Aside:
    """Staged rows whose key an earlier batch of this run already wrote: duplicates in the
    source (all of them in a full run; those `repeats` confirms in an incremental one) are
    taken out of the stage and set aside."""
    match = sql.SQL(" AND ").join(sql.SQL("t.{k} = s.{k}").format(k=sql.Identifier(k))
                                  for k in keys)
    found = conn.execute(sql.SQL("SELECT {ks} FROM _stage s JOIN {t} t ON {m} "
                                 "WHERE t._run_id = %s").format(
        ks=sql.SQL(", ").join(sql.SQL("s.{}::text").format(sql.Identifier(k)) for k in keys),
        t=target, m=match), (run_id,)).fetchall()
    if not found:
        return []
    dupes = set(found) if repeats is None else repeats(found)
    if not dupes:
        return []
    dropped = conn.execute(sql.SQL("DELETE FROM _stage WHERE {ks} = ANY(%s) RETURNING "
                                   "{cols}").format(
        ks=joined(keys), cols=sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)),
        ([key_text(k) for k in dupes],)).fetchall()
    index = [[c.name for c in columns].index(k) for k in keys]
    return [(row, f"key {describe(keys, [row[i] for i in index])} was already loaded from an "
                  "earlier batch of this run: the primary key is not unique in the source")
            for row in dropped]


def mark_missing(conn: psycopg.Connection, schema: str, table: str, keys: list[str],
                 source_keys: list[tuple]) -> int:
    """Key comparison: rows the source no longer has are marked deleted, never removed. Keys
    are compared as text (the source's and the raw layer's types may differ)."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur = conn.execute(sql.SQL(
        "UPDATE {t} SET _deleted_at = now() WHERE _deleted_at IS NULL AND NOT ({k} = "
        "ANY(%s))").format(t=target, k=joined(keys)), ([key_text(k) for k in source_keys],))
    return cur.rowcount


def mark_soft_deleted(conn: psycopg.Connection, schema: str, table: str, column: str,
                      run_id: int) -> int:
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    cur = conn.execute(sql.SQL(
        "UPDATE {t} SET _deleted_at = now() WHERE _run_id = %s AND _deleted_at IS NULL AND "
        "COALESCE({c}::text, '') NOT IN ('', '0', 'false', 'f')").format(
            t=target, c=sql.Identifier(column)), (run_id,))
    return cur.rowcount


def mark_not_in_run(conn: psycopg.Connection, schema: str, table: str, keys: list[str],
                    run_id: int) -> int:
    """After a full load: rows the run did not see are gone from the source. A row the run
    set aside (a bad value) is still in the source: it stays as last loaded."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    held = sql.SQL(" || chr(31) || ").join(sql.SQL("(q.row->>{})").format(sql.Literal(k))
                                           for k in keys)
    cur = conn.execute(sql.SQL(
        "UPDATE {t} SET _deleted_at = now() WHERE _deleted_at IS NULL "
        "AND _run_id IS DISTINCT FROM %s AND {k} NOT IN (SELECT {h} FROM sync_quarantine q "
        "WHERE q.run_id = %s AND {h} IS NOT NULL)").format(
            t=target, k=joined(keys), h=held), (run_id, run_id))
    return cur.rowcount
