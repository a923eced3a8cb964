"""Rules to SQL. Every row-level rule of a dataset becomes a flag of one scan, aggregated
twice: the count of failing rows (count(*) FILTER) and their tuple ids (array_agg(ctid) FILTER:
all of them for a hard rule, which quarantines them; the first few as a sample otherwise);
freshness is a max() in the same scan. So one pass over the table answers the row rules, as a
hand-written count(*) with the same predicates would (bench/quality.py measures the two side
by side). Uniqueness takes its own pass (a hash aggregate of the repeated values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cityops.errors import NotFound

SAMPLE = 5  # failing rows kept per rule and run
BOOKKEEPING = ("_synced_at", "_run_id", "_deleted_at")
_TEXT = ("text", "character", "character varying", "varchar", "char", "bpchar")


@dataclass
class Table:
    dataset: str
    schema: str
    name: str
    columns: dict[str, str]  # column -> type as PostgreSQL formats it
    keys: list[str]
    department: str
    sync_id: int | None
    masks: dict[str, str] = field(default_factory=dict)  # column -> mask kind (not none)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def live(self) -> sql.Composable:
        """Rows deleted at the source stay in a raw table, marked: rules judge the rest."""
        if "_deleted_at" in self.columns:
            return sql.SQL("_deleted_at IS NULL")
        return sql.SQL("true")

    def is_text(self, column: str) -> bool:
        return self.columns[column].split("(")[0] in _TEXT


def table_info(conn: psycopg.Connection, dataset: str) -> Table:
    row = conn.execute("SELECT department_id, primary_key, sync_id FROM datasets WHERE id = %s",
                       (dataset,)).fetchone()
    if row is None:
        raise NotFound(f"dataset {dataset} is not registered")
    schema, _, name = dataset.partition(".")
    columns = dict(conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum", (f'"{schema}"."{name}"',)).fetchall())
    if not columns:
        raise NotFound(f"dataset {dataset}: its table {schema}.{name} does not exist")
    masks = dict(conn.execute(
        "SELECT name, CASE WHEN mask_kind = 'none' AND sensitivity >= 3 THEN 'full' "
        "ELSE mask_kind END FROM dataset_fields WHERE dataset_id = %s AND (mask_kind <> 'none' "
        "OR sensitivity >= 3)", (dataset,)).fetchall())
    return Table(dataset, schema, name, columns, list(row[1]), row[0], row[2], masks)


def _col(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def fail_predicate(rule: Any, table: Table) -> sql.Composable:
    """The condition a row fails `rule` on (row-level kinds but unique)."""
    kind = rule.kind
    if kind == "not_null":
        parts = []
        for name in rule.columns:
            blank = sql.SQL(" OR btrim({}) = ''").format(_col(name)) if table.is_text(name) \
                else sql.SQL("")
            parts.append(sql.SQL("({} IS NULL{})").format(_col(name), blank))
        return sql.SQL(" OR ").join(parts)
    col = _col(rule.column)
    if kind == "format":
        return sql.SQL("{c} IS NOT NULL AND NOT ({c}::text ~ {r})").format(
            c=col, r=sql.Literal(rule.regex))
    if kind == "check_digit":
        fn = sql.SQL({"uscc": "uscc_valid", "id_card": "id_card_valid"}[rule.standard])
        return sql.SQL("{c} IS NOT NULL AND NOT {f}({c}::text)").format(c=col, f=fn)
    if kind == "domain":
        if rule.values is not None:
            return sql.SQL("{c} IS NOT NULL AND NOT ({c}::text = ANY({v}::text[]))").format(
                c=col, v=sql.Literal([str(v) for v in rule.values]))
        return sql.SQL("{c} IS NOT NULL AND NOT ({c}::text IN (SELECT code FROM code_values "
                       "WHERE table_id = {t}))").format(c=col, t=sql.Literal(rule.code_table))
    if kind == "range":
        bounds = []
        if rule.min is not None:
            bounds.append(sql.SQL("{} < {}").format(col, sql.Literal(rule.min)))
        if rule.max is not None:
            bounds.append(sql.SQL("{} > {}").format(col, sql.Literal(rule.max)))
        return sql.SQL("({})").format(sql.SQL(" OR ").join(bounds))
    if kind == "reference":
        schema, _, name = rule.dataset.partition(".")
        # IN over an uncorrelated subquery: hashed once, not a lookup per row
        return sql.SQL("{c} IS NOT NULL AND NOT ({c}::text IN (SELECT o.{to}::text FROM {o} o "
                       "WHERE o.{to} IS NOT NULL))").format(
            c=col, to=_col(rule.to), o=sql.Identifier(schema, name))
    raise ValueError(f"{kind} is not a row predicate")


def _unique_parts(rule: Any) -> tuple[sql.Composable, sql.Composable]:
    """(all columns present, the value compared) for a uniqueness rule."""
    cols = [_col(c) for c in rule.columns]
    present = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(c) for c in cols)
    value = cols[0] if len(cols) == 1 else sql.SQL("({})").format(sql.SQL(", ").join(cols))
    return present, value


def _scanned(rule: Any) -> bool:
    return rule.kind == "freshness" or (rule.row_level and rule.kind != "unique")


def scan_query(rules: list, table: Table) -> sql.Composed:
    """One pass for `rules`: the inner query evaluates each rule's predicate once per row
    (OFFSET 0 keeps the planner from folding it into the aggregates, which would evaluate
    it once for the count and again for the tuple ids); the outer one aggregates the flags.
    Columns: the row count, then per row rule (count, tuple ids), per freshness rule the
    newest row's age in seconds."""
    inner: list[sql.Composable] = [sql.SQL("ctid")]
    outer: list[sql.Composable] = [sql.SQL("count(*)")]
    for i, rule in enumerate(r for r in rules if _scanned(r)):
        flag = sql.Identifier(f"f{i}")
        if rule.kind == "freshness":
            inner.append(sql.SQL("{} AS {}").format(_col(rule.column), flag))
            outer.append(sql.SQL("extract(epoch FROM now() - max({})::timestamptz)::float8")
                         .format(flag))
            continue
        inner.append(sql.SQL("({}) AS {}").format(fail_predicate(rule, table), flag))
        tids = sql.SQL("array_agg(ctid::text) FILTER (WHERE {})").format(flag)
        if not rule.hard:  # a sample is enough; a hard rule holds every failing row
            tids = sql.SQL("({})[1:{}]").format(tids, sql.Literal(SAMPLE))
        outer += [sql.SQL("count(*) FILTER (WHERE {})").format(flag), tids]
    return sql.SQL("SELECT {} FROM (SELECT {} FROM {} WHERE {} OFFSET 0) s").format(
        sql.SQL(", ").join(outer), sql.SQL(", ").join(inner), table.ident, table.live)


def width(rule: Any) -> int:
    """The columns `scan_query` gives `rule`."""
    if not _scanned(rule):
        return 0
    return 1 if rule.kind == "freshness" else 2


def duplicates_query(rule: Any, table: Table) -> sql.Composed:
    """The rows whose value another row shares, with their primary key (the caller keeps the
    first by key as the original): a hash aggregate finds the repeated values, a second pass
    their rows; cheaper than sorting every row (count(DISTINCT) or a window would)."""
    present, value = _unique_parts(rule)
    keys = sql.SQL(", ").join(_col(k) for k in table.keys) if table.keys else sql.SQL("ctid")
    group = sql.SQL(", ").join(_col(c) for c in rule.columns)
    return sql.SQL("SELECT ctid::text, {v}::text, {k} FROM {t} WHERE {live} AND {p} AND ({g}) "
                   "IN (SELECT {g} FROM {t} WHERE {live} AND {p} GROUP BY {g} "
                   "HAVING count(*) > 1)").format(
        v=value, k=keys, t=table.ident, live=table.live, p=present, g=group)
