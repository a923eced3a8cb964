"""One quality run of a dataset: one scan for every row rule, the dataset-level rules beside
it, then results with masked samples, the hard rules' quarantine, the day's scores and the
校核纠错 tasks, all in one REPEATABLE READ transaction (the tuple ids the scan collected stay
valid for the inserts that follow, and a run is recorded whole or not at all)."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import IsolationLevel

from cityevents.calendar import WorkCalendar
from cityops.errors import PlatformError
from datafoundation.quality import store
from datafoundation.quality.compile import (
    SAMPLE,
    Table,
    duplicates_query,
    scan_query,
    table_info,
    width,
)
from datafoundation.quality.load import stored
from datafoundation.quality.rules import RuleSet

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    rule: Any
    checked: int
    failed: int
    detail: str = ""
    tids: list[str] = field(default_factory=list)  # failing rows (all for a hard rule)
    sample: list[dict] = field(default_factory=list)


def _dataset_level(conn: psycopg.Connection, rule: Any, table: Table, value: Any,
                   count: int, columns: dict[str, str]) -> Outcome:
    """Freshness, row count against its history, schema change, availability: 1 check each."""
    failed, detail = False, ""
    if rule.kind == "freshness":
        age = rule.age.total_seconds()
        failed = value is None or value > age
        detail = "no rows" if value is None else f"newest {rule.column} {value / 3600:.1f} h old"
    elif rule.kind == "row_count":
        history = [r[0] for r in conn.execute(
            "SELECT row_count FROM quality.runs WHERE dataset_id = %s AND state = 'succeeded' "
            "ORDER BY id DESC LIMIT %s", (table.dataset, rule.history)).fetchall()]
        base = statistics.median(history) if history else None
        change = abs(count - base) / base if base else 0.0
        failed = count < rule.min_rows or change > rule.tolerance
        detail = f"{count} rows" + (f", median of last {len(history)} runs {base:.0f}"
                                    if base is not None else ", no history yet")
    elif rule.kind == "schema":
        before = rule.columns or _previous_columns(conn, table.dataset)
        changes = _schema_changes(before, columns) if before else []
        failed, detail = bool(changes), "; ".join(changes) or "as before"
    elif rule.kind == "available":
        state = conn.execute("SELECT state FROM sync_runs WHERE sync_id = %s AND state <> "
                             "'running' ORDER BY id DESC LIMIT 1", (table.sync_id,)).fetchone()
        failed = state is not None and state[0] != "succeeded"
        detail = f"last sync {state[0] if state else 'none'}"
    return Outcome(rule, 1, int(failed), detail)


def _previous_columns(conn: psycopg.Connection, dataset: str) -> dict | None:
    row = conn.execute("SELECT columns FROM quality.runs WHERE dataset_id = %s AND state = "
                       "'succeeded' ORDER BY id DESC LIMIT 1", (dataset,)).fetchone()
    return row[0] if row else None


def _schema_changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    changes = [f"column {c} added" for c in now if c not in before]
    changes += [f"column {c} removed" for c in before if c not in now]
    changes += [f"column {c} {before[c]} -> {now[c]}" for c in now
                if c in before and before[c] != now[c]]
    return changes


def _duplicates(conn: psycopg.Connection, rule: Any, table: Table) -> Outcome:
    """Every row repeating an earlier row's value fails; the first, by primary key, is the
    original and passes."""
    groups: dict[str, list[tuple]] = {}
    for tid, value, *key in conn.execute(duplicates_query(rule, table)).fetchall():
        groups.setdefault(value, []).append((key, tid))
    tids = [tid for rows in groups.values() for _key, tid in sorted(rows)[1:]]
    return Outcome(rule, 0, len(tids), tids=tids if rule.hard else tids[:SAMPLE])


def evaluate(conn: psycopg.Connection, ruleset: RuleSet, table: Table) -> tuple[int, list]:
    """The scan, the uniqueness passes and the dataset-level rules: (row count, an Outcome
    per rule)."""
    row = conn.execute(scan_query(ruleset.rules, table)).fetchone()
    count, at = row[0], 1
    outcomes = []
    for rule in ruleset.rules:
        values, at = row[at:at + width(rule)], at + width(rule)
        if rule.kind == "unique":
            outcome = _duplicates(conn, rule, table)
            outcome.checked = count
        elif rule.row_level:
            outcome = Outcome(rule, count, values[0], tids=values[1] or [])
        else:
            outcome = _dataset_level(conn, rule, table, values[0] if values else None, count,
                                     table.columns)
        outcomes.append(outcome)
    return count, outcomes


def run_on(conn: psycopg.Connection, dataset: str, trigger: str = "manual",
           calendar: WorkCalendar | None = None) -> int:
    """Run every rule of `dataset` now on `conn` (autocommit, outside a transaction);
    returns the run id. A failure is recorded on the run and raised; nothing of a failed run
    is kept but the run's row and its error."""
    ruleset, days = stored(conn, dataset)
    table = table_info(conn, dataset)
    run_id = conn.execute("INSERT INTO quality.runs (dataset_id, trigger) VALUES (%s, %s) "
                          "RETURNING id", (dataset, trigger)).fetchone()[0]
    level = conn.isolation_level
    # one run of a dataset at a time (a sync's and a person's could meet): taken before the
    # transaction, so a waiting run's snapshot starts after the other's commit
    conn.execute("SELECT pg_advisory_lock(hashtext('quality'), hashtext(%s))", (dataset,))
    try:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            count, outcomes = evaluate(conn, ruleset, table)
            store.record(conn, table, run_id, count, outcomes, days, calendar or WorkCalendar())
    except (psycopg.Error, PlatformError) as err:
        message = getattr(err, "detail", None) or str(err)
        conn.execute("UPDATE quality.runs SET state = 'failed', finished_at = now(), "
                     "error = %s WHERE id = %s", (message[:2000], run_id))
        log.warning("quality run %s of %s failed: %s", run_id, dataset, message)
        raise
    finally:
        conn.isolation_level = level
        conn.execute("SELECT pg_advisory_unlock(hashtext('quality'), hashtext(%s))", (dataset,))
    return run_id


def run_dataset(database_url: str, dataset: str, trigger: str = "manual",
                calendar: WorkCalendar | None = None) -> int:
    """`run_on` a connection of its own."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return run_on(conn, dataset, trigger, calendar)


def after_load(target: str | psycopg.Connection, dataset: str, trigger: str) -> int | None:
    """The hook a load calls when it has committed (the sync's run end with its database
    URL, a layer model's build with its autocommit connection): runs the dataset's rules if
    it has any. A failing quality run is logged, never raised: the load itself succeeded."""
    if isinstance(target, str):
        with psycopg.connect(target, autocommit=True) as conn:
            return after_load(conn, dataset, trigger)
    try:
        if target.execute("SELECT 1 FROM quality.rule_sets WHERE dataset_id = %s",
                          (dataset,)).fetchone() is None:
            return None
        return run_on(target, dataset, trigger)
    except (psycopg.Error, PlatformError) as err:
        log.warning("quality after loading %s: %s", dataset, err)
        return None
