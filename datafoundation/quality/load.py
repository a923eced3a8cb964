"""Loading a rule set: parse, check every rule against the database (its columns, its regex,
the code table or dataset it refers to, and the SQL it compiles to, planned but not run), then
replace the dataset's rules in one transaction. A rule that does not compile is refused naming
the dataset and the rule, and nothing is stored."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from cityops.errors import InvalidInput, NotFound
from datafoundation.quality.compile import Table, duplicates_query, scan_query, table_info
from datafoundation.quality.rules import RuleSet, dimension, parse


def _columns(rule: Any) -> list[str]:
    if rule.kind in ("not_null", "unique"):
        return list(rule.columns)
    if rule.kind == "schema":
        return []
    return [rule.column] if hasattr(rule, "column") else []


def _check_rule(conn: psycopg.Connection, rule: Any, table: Table) -> None:
    where = f"dataset {table.dataset}, rule {rule.name}"
    for column in _columns(rule):
        if column not in table.columns:
            raise InvalidInput(f"{where}: column {column} is not in {table.schema}."
                               f"{table.name} (it has {', '.join(table.columns)})")
    if rule.hard and not rule.row_level:
        raise InvalidInput(f"{where}: only a row rule can be hard ({rule.kind} judges the "
                           "dataset as a whole)")
    if rule.hard and not table.keys:
        raise InvalidInput(f"{where}: a hard rule needs the dataset's primary key to hold "
                           "rows back, and the dataset has none")
    if rule.kind == "check_digit" and not table.is_text(rule.column):
        raise InvalidInput(f"{where}: column {rule.column} is {table.columns[rule.column]}, "
                           "a check digit needs text")
    if rule.kind == "format":
        try:
            with conn.transaction():
                conn.execute("SELECT '' ~ %s", (rule.regex,))
        except psycopg.DataError as err:
            raise InvalidInput(f"{where}: regex {rule.regex!r} does not compile: "
                               f"{err.diag.message_primary}") from err
    if rule.kind == "domain" and rule.code_table is not None and conn.execute(
            "SELECT 1 FROM code_tables WHERE id = %s", (rule.code_table,)).fetchone() is None:
        raise InvalidInput(f"{where}: code table {rule.code_table} does not exist")
    if rule.kind == "reference":
        try:
            other = table_info(conn, rule.dataset)
        except NotFound as err:
            raise InvalidInput(f"{where}: {err.detail}") from err
        if rule.to not in other.columns:
            raise InvalidInput(f"{where}: column {rule.to} is not in {rule.dataset}")
    _plan(conn, rule, table, where)


def _plan(conn: psycopg.Connection, rule: Any, table: Table, where: str) -> None:
    """Plan (EXPLAIN, nothing run) the rule's part of the scan: a type mismatch such as a
    range bound of the wrong kind fails here, with PostgreSQL's words."""
    if not (rule.row_level or rule.kind == "freshness"):
        return
    inner = duplicates_query(rule, table) if rule.kind == "unique" else scan_query([rule], table)
    query = sql.SQL("EXPLAIN {}").format(inner)
    try:
        with conn.transaction():
            conn.execute(query)
    except psycopg.Error as err:
        raise InvalidInput(f"{where}: does not compile: {err.diag.message_primary}") from err


def check(conn: psycopg.Connection, ruleset: RuleSet) -> Table:
    try:
        table = table_info(conn, ruleset.dataset)
    except NotFound as err:
        raise InvalidInput(f"dataset {ruleset.dataset}: {err.detail}") from err
    for rule in ruleset.rules:
        _check_rule(conn, rule, table)
    return table


def store(conn: psycopg.Connection, ruleset: RuleSet, source: str, loaded_by: str) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO quality.rule_sets (dataset_id, source, correction_days, loaded_by) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (dataset_id) DO UPDATE SET "
            "source = EXCLUDED.source, correction_days = EXCLUDED.correction_days, "
            "loaded_at = now(), loaded_by = EXCLUDED.loaded_by",
            (ruleset.dataset, source, ruleset.correction_days, loaded_by))
        conn.execute("DELETE FROM quality.rules WHERE dataset_id = %s", (ruleset.dataset,))
        for position, rule in enumerate(ruleset.rules, 1):
            conn.execute(
                "INSERT INTO quality.rules (dataset_id, name, position, kind, dimension, hard, "
                "spec, description) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (ruleset.dataset, rule.name, position, rule.kind, dimension(rule), rule.hard,
                 Jsonb(rule.model_dump(exclude_none=True)), rule.description))


def load_rules(conn: psycopg.Connection, text: str, loaded_by: str = "",
               dataset: str | None = None) -> RuleSet:
    """Parse, check and store a rule set; returns it. InvalidInput names dataset and rule."""
    ruleset = parse(text, dataset)
    check(conn, ruleset)
    store(conn, ruleset, text, loaded_by)
    return ruleset


def load_file(conn: psycopg.Connection, path: Path, loaded_by: str = "") -> RuleSet:
    """A file named after its dataset (raw_scjg_qydj.firms.yaml) may leave `dataset:` out."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InvalidInput(f"rules file {path}: {err.strerror}") from err
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    named = stem if re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", stem) else None
    if named and not re.search(r"^dataset:", text, re.MULTILINE):
        return load_rules(conn, text, loaded_by, named)
    return load_rules(conn, text, loaded_by)


def stored(conn: psycopg.Connection, dataset: str) -> tuple[RuleSet, int]:
    """The dataset's rule set as loaded, and its correction limit in working days."""
    row = conn.execute("SELECT source, correction_days FROM quality.rule_sets "
                       "WHERE dataset_id = %s", (dataset,)).fetchone()
    if row is None:
        raise NotFound(f"dataset {dataset} has no quality rules")
    return parse(row[0], dataset), row[1]
