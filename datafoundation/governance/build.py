"""Building one model's target: the rows computed from the upstream, hard rules and code
mappings applied (a failing row goes to layer_model_rejects with its reason), one row per
key, all in one transaction that swaps the new table in. A failure rolls everything back:
the target keeps its previous contents."""

from __future__ import annotations

import psycopg
from psycopg import sql

from datafoundation.governance.models import Model


def _ident(dataset: str) -> sql.Composable:
    schema, table = dataset.split(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def _lit(value: str) -> sql.Composable:
    return sql.Literal(value)


def _carried(keys: list[str]) -> list[sql.Composable]:
    """How a staged row finds its upstream row again (for a reject's copy): the upstream's
    key, or, for a table without one, the whole row as JSON (slower: built for every row)."""
    if not keys:
        return [sql.SQL("_row")]
    return [sql.Identifier(f"_src_{i}") for i in range(len(keys))]


def _upstream(model: Model, held: bool) -> sql.Composable:
    """The upstream as the model reads it: through quality.passed() (数据质量's contract,
    migration 122) while a hard rule holds rows of it, so held rows never reach the layer above;
    straight from the table otherwise (the function materialises every row)."""
    if held:
        return sql.SQL("quality.passed(NULL::{})").format(_ident(model.source or ""))
    return _ident(model.source or "")


def _inner(model: Model, keys: list[str], held: bool = False) -> sql.Composable:
    """Per upstream row: each column's expression (a mapped column's raw code), the first
    hard rule it fails, and the upstream key of the row."""
    parts = []
    for c in model.columns:
        if c.map is not None:
            parts.append(sql.SQL("({})::text AS {}").format(
                sql.Identifier(c.map.column), sql.Identifier(f"_m_{c.name}")))
        else:
            expr = sql.SQL(c.sql) if c.sql else sql.Identifier(c.name)
            parts.append(sql.SQL("({})::{} AS {}").format(expr, sql.SQL(c.type),
                                                          sql.Identifier(c.name)))
    rules = [sql.SQL("WHEN ({}) IS TRUE THEN {}").format(sql.SQL(r.when), _lit(r.reason))
             for r in model.reject]
    hard = sql.SQL("CASE {} END").format(sql.SQL(" ").join(rules)) if rules else sql.SQL(
        "NULL::text")
    where = sql.SQL(model.where) if model.where else sql.SQL("true")
    carried = [sql.SQL("src.{} AS {}").format(sql.Identifier(k), c)
               for k, c in zip(keys, _carried(keys), strict=False)] or [
        sql.SQL("to_jsonb(src) AS _row")]
    return sql.SQL("SELECT {}, {} AS _hard, {} FROM {} src WHERE {}").format(
        sql.SQL(", ").join(parts), hard, sql.SQL(", ").join(carried),
        _upstream(model, held), where)


def stage_query(model: Model, keys: list[str], held: bool = False) -> sql.Composable:
    """The mapped values joined in by code table; a value without a mapping, or not in the
    column's code table, rejects its row with a reason naming the column and the value."""
    cols, joins, checks = [], [], []
    for n, c in enumerate(model.columns):
        name = sql.Identifier(c.name)
        if c.map is not None:
            raw, alias = sql.Identifier(f"_m_{c.name}"), sql.Identifier(f"m{n}")
            cols.append(sql.SQL("({}.code)::{} AS {}, s.{}").format(alias, sql.SQL(c.type),
                                                                   name, raw))
            joins.append(sql.SQL(
                "LEFT JOIN value_maps {a} ON {a}.source = {src} AND {a}.table_id = {t} AND "
                "{a}.source_value = s.{raw}").format(a=alias, src=_lit(c.map.source),
                                                     t=_lit(c.map.table), raw=raw))
            checks.append(sql.SQL(
                "CASE WHEN s.{raw} IS NOT NULL AND {a}.code IS NULL THEN format({msg}, s.{raw}) "
                "END").format(raw=raw, a=alias, msg=_lit(
                    f"{c.map.column} %L has no mapping onto code table {c.map.table} "
                    f"(value map {c.map.source})")))
        else:
            cols.append(sql.SQL("s.{}").format(name))
        if c.code_table is not None:
            alias = sql.Identifier(f"k{n}")
            value = sql.SQL("({}.code)").format(sql.Identifier(f"m{n}")) if c.map else \
                sql.SQL("s.{}").format(name)
            joins.append(sql.SQL("LEFT JOIN code_values {a} ON {a}.table_id = {t} AND "
                                 "{a}.code = ({v})::text").format(
                a=alias, t=_lit(c.code_table), v=value))
            checks.append(sql.SQL("CASE WHEN {v} IS NOT NULL AND {a}.code IS NULL THEN "
                                  "format({msg}, {v}) END").format(
                v=value, a=alias, msg=_lit(f"{c.name} %L is not a code of table {c.code_table}")))
    reason = sql.SQL("COALESCE(s._hard, {})").format(sql.SQL(", ").join(checks)) if checks \
        else sql.SQL("s._hard")
    carried = sql.SQL(", ").join(sql.SQL("s.{}").format(c) for c in _carried(keys))
    return sql.SQL("WITH s AS ({}) SELECT {}, {}, {} AS _reason FROM s {}").format(
        _inner(model, keys, held), sql.SQL(", ").join(cols), carried, reason,
        sql.SQL(" ").join(joins))


def _key(model: Model) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(k) for k in model.key)


def _source_key(conn: psycopg.Connection, dataset: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
        "a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)", (dataset,))]


def _reject(conn: psycopg.Connection, model: Model, run_id: int, keys: list[str],
            which: sql.Composable, reason: sql.Composable, args: tuple = ()) -> None:
    """Copy the upstream rows of the staged rows `which` selects into the rejects, with the
    reason; the upstream row is found again by its key."""
    source = model.source or ""
    if keys:
        on = sql.SQL(" AND ").join(sql.SQL("src.{} = st.{}").format(sql.Identifier(k), c)
                                   for k, c in zip(keys, _carried(keys), strict=True))
        row, join = sql.SQL("to_jsonb(src)"), sql.SQL("JOIN {} src ON {}").format(
            _ident(source), on)
    else:
        row, join = sql.SQL("st._row"), sql.SQL("")
    conn.execute(sql.SQL(
        "INSERT INTO layer_model_rejects (run_id, model, dataset, row, reason) SELECT %s, %s, "
        "%s, {}, {} FROM _stage st {} WHERE {}").format(row, reason, join, which),
        (run_id, model.name, source, *args))


def build_mapping(conn: psycopg.Connection, model: Model, run_id: int) -> dict:
    """Stage (with each row's rank among the rows of its key: the first by latest_by is kept,
    the others are rejected as duplicates), reject, write the new table. Runs inside the
    caller's transaction."""
    keys = _source_key(conn, model.source or "")
    held = conn.execute("SELECT EXISTS (SELECT 1 FROM quality.quarantine WHERE dataset_id = %s "
                        "AND released_at IS NULL)", (model.source,)).fetchone()[0]
    order = sql.SQL(model.latest_by) if model.latest_by else _key(model)
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE _stage ON COMMIT DROP AS SELECT *, CASE WHEN _reason IS NULL THEN "
        "row_number() OVER (PARTITION BY _reason IS NULL, {k} ORDER BY {o}) END AS _rank "
        "FROM ({q}) q").format(k=_key(model), o=order, q=stage_query(model, keys, held)))
    _reject(conn, model, run_id, keys, sql.SQL("st._reason IS NOT NULL"),
            sql.SQL("st._reason"))
    _reject(conn, model, run_id, keys, sql.SQL("st._rank > 1"),
            sql.SQL("format(%s, concat_ws(', ', {}))").format(sql.SQL(", ").join(
                sql.SQL("st.{}").format(sql.Identifier(k)) for k in model.key)),
            (f"duplicate of key {', '.join(model.key)} = %s: the first by "
             f"{model.latest_by or 'key'} is kept",))
    unmapped = {}
    for c in model.columns:
        if c.map is not None:
            values = [r[0] for r in conn.execute(sql.SQL(
                "SELECT DISTINCT {} FROM _stage WHERE {} IS NOT NULL AND {} IS NULL "
                "ORDER BY 1 LIMIT 50").format(*(sql.Identifier(x) for x in (
                    f"_m_{c.name}", f"_m_{c.name}", c.name))))]
            if values:
                unmapped[c.name] = values
    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type))
                                 for c in model.columns)
    names = sql.SQL(", ").join(sql.Identifier(c.name) for c in model.columns)
    new = _swap_begin(conn, model, sql.SQL("({})").format(columns))
    conn.execute(sql.SQL("INSERT INTO {} ({n}) SELECT {n} FROM _stage WHERE _rank = 1").format(
        new, n=names))
    rows_in = conn.execute("SELECT count(*) FROM _stage").fetchone()[0]
    out = _swap_end(conn, model)
    return {"rows_in": rows_in, "rows_out": out, "rows_rejected": rows_in - out,
            "unmapped": unmapped or None}


def build_sql(conn: psycopg.Connection, model: Model, run_id: int) -> dict:
    rows_in = 0
    for dataset in model.upstream:
        rows_in += conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            _ident(dataset))).fetchone()[0]
    _swap_begin(conn, model, sql.SQL("AS {}").format(sql.SQL(model.sql or "")))
    out = _swap_end(conn, model)
    return {"rows_in": rows_in, "rows_out": out, "rows_rejected": 0, "unmapped": None}


def _swap_begin(conn: psycopg.Connection, model: Model, body: sql.Composable) -> sql.Composable:
    schema, table = model.target.split(".")
    new = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(f"_new_{table}"))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(new))
    conn.execute(sql.SQL("CREATE TABLE {} {}").format(new, body))
    return new


def _swap_end(conn: psycopg.Connection, model: Model) -> int:
    """The new table replaces the old one (readers see either, never a half-built table)."""
    schema, table = model.target.split(".")
    new = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(f"_new_{table}"))
    conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY ({})").format(
        new, sql.Identifier(f"_new_{table}_pkey"), _key(model)))
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_ident(model.target)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(new, sql.Identifier(table)))
    # the key's index takes the table's name, so the next build's _new_ name is free
    conn.execute(sql.SQL("ALTER INDEX {}.{} RENAME TO {}").format(
        sql.Identifier(schema), sql.Identifier(f"_new_{table}_pkey"),
        sql.Identifier(f"{table}_pkey")))
    return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        _ident(model.target))).fetchone()[0]
