"""Recording a run: results with masked samples, the hard rules' quarantine (rows copied with
rule and reason, released when they pass again), the dimension scores of the day and the
校核纠错 tasks of the providing department."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from cityevents.calendar import WorkCalendar
from datafoundation.quality.compile import BOOKKEEPING, Table
from datafoundation.quality.rules import dimension
from datafoundation.services.masking import mask_rows

_STANDARDS = {"uscc": "统一社会信用代码 check digit (GB 32100)",
              "id_card": "公民身份号码 check digit (GB 11643)"}


def reason(rule: Any) -> str:
    """Why a row fails `rule`, in words (the rule's own description when it has one)."""
    if rule.description:
        return rule.description
    columns = ", ".join(getattr(rule, "columns", None) or [getattr(rule, "column", "")])
    return {
        "not_null": f"{columns}: missing or blank",
        "format": f"{columns}: does not match {getattr(rule, 'regex', '')}",
        "check_digit": f"{columns}: fails the {_STANDARDS.get(getattr(rule, 'standard', ''))}",
        "domain": f"{columns}: not in {getattr(rule, 'code_table', None) or 'the allowed values'}",
        "range": f"{columns}: outside [{getattr(rule, 'min', '')}, {getattr(rule, 'max', '')}]",
        "unique": f"{columns}: repeats an earlier row",
        "reference": f"{columns}: not found in {getattr(rule, 'dataset', '')}",
    }.get(rule.kind, rule.kind)


def _key(table: Table) -> sql.Composable:
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, t.{}").format(sql.Literal(k), sql.Identifier(k)) for k in table.keys))


def _samples(conn: psycopg.Connection, table: Table, outcomes: list) -> None:
    """Fill each failing rule's sample: its first rows, bookkeeping dropped, masked."""
    wanted = {tid for o in outcomes for tid in o.tids[:5]}
    if not wanted:
        return
    rows = dict(conn.execute(
        sql.SQL("SELECT t.ctid::text, to_jsonb(t) - %s::text[] FROM {} t "
                "WHERE t.ctid = ANY(%s::tid[])").format(table.ident),
        (list(BOOKKEEPING), list(wanted))).fetchall())
    for outcome in outcomes:
        picked = [dict(rows[t]) for t in outcome.tids[:5] if t in rows]
        outcome.sample = mask_rows(picked, table.masks)


def _quarantine(conn: psycopg.Connection, table: Table, run_id: int, outcomes: list) -> None:
    """Copy the rows failing a hard rule (once while held) and release the held rows that
    pass now; rules no longer hard, or gone, hold nothing. (IN over a subquery, hashed: an
    = ANY(array) here compared every held row with every failing one.)"""
    hard = [o for o in outcomes if o.rule.hard]
    for o in hard:
        conn.execute(sql.SQL(
            "INSERT INTO quality.quarantine (dataset_id, rule, row_key, row_data, reason, run_id)"
            " SELECT %s, %s, {k}, to_jsonb(t) - %s::text[], %s, %s FROM {t} t "
            "WHERE t.ctid = ANY(%s::tid[]) ON CONFLICT (dataset_id, rule, row_key) "
            "WHERE released_at IS NULL DO NOTHING").format(k=_key(table), t=table.ident),
            (table.dataset, o.rule.name, list(BOOKKEEPING), reason(o.rule), run_id, o.tids))
        conn.execute(sql.SQL(
            "UPDATE quality.quarantine SET released_at = now(), released_run_id = %s "
            "WHERE dataset_id = %s AND rule = %s AND released_at IS NULL AND NOT (row_key IN "
            "(SELECT {k} FROM {t} t WHERE t.ctid = ANY(%s::tid[])))").format(
            k=_key(table), t=table.ident), (run_id, table.dataset, o.rule.name, o.tids))
    conn.execute("UPDATE quality.quarantine SET released_at = now(), released_run_id = %s "
                 "WHERE dataset_id = %s AND released_at IS NULL AND NOT (rule = ANY(%s))",
                 (run_id, table.dataset, [o.rule.name for o in hard]))


def _scores(conn: psycopg.Connection, table: Table, run_id: int, outcomes: list) -> float:
    """Per dimension: the mean pass rate of its rules (x100); the run: the dimensions' mean.
    The day (county time) keeps its last run's figures."""
    by_dim: dict[str, list] = {}
    for o in outcomes:
        by_dim.setdefault(dimension(o.rule), []).append(o)
    scores = {}
    for dim, group in by_dim.items():
        rates = [1 - o.failed / o.checked if o.checked else 1.0 for o in group]
        scores[dim] = round(100 * sum(rates) / len(rates), 2)
        conn.execute(
            "INSERT INTO quality.daily_scores (day, dataset_id, department_id, dimension, score,"
            " rules, failed_rules, run_id) VALUES ((now() AT TIME ZONE 'Asia/Shanghai')::date,"
            " %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (day, dataset_id, dimension) DO UPDATE "
            "SET score = EXCLUDED.score, rules = EXCLUDED.rules, department_id = "
            "EXCLUDED.department_id, failed_rules = EXCLUDED.failed_rules, run_id = "
            "EXCLUDED.run_id", (table.dataset, table.department, dim, scores[dim], len(group),
                                sum(1 for o in group if o.failed), run_id))
    return round(sum(scores.values()) / len(scores), 2)


def _tasks(conn: psycopg.Connection, table: Table, run_id: int, outcomes: list, days: int,
           cal: WorkCalendar) -> None:
    """A failed rule opens (or refreshes) the department's correction task; a passing rule
    closes it."""
    now = datetime.now(UTC)
    due = cal.deadline(now, cal.limit_seconds(days, "work_days"), "work_days")
    for o in outcomes:
        if o.failed:
            updated = conn.execute(
                "UPDATE quality.tasks SET failed = %s, detail = %s, sample = %s, last_run_id = %s"
                " WHERE dataset_id = %s AND rule = %s AND state = 'open'",
                (o.failed, o.detail, Jsonb(o.sample), run_id, table.dataset, o.rule.name))
            if updated.rowcount == 0:
                conn.execute(
                    "INSERT INTO quality.tasks (dataset_id, rule, department_id, failed, detail,"
                    " sample, due_at, opened_run_id, last_run_id) VALUES (%s, %s, %s, %s, %s, "
                    "%s, %s, %s, %s)", (table.dataset, o.rule.name, table.department, o.failed,
                                        o.detail, Jsonb(o.sample), due, run_id, run_id))
        else:
            conn.execute("UPDATE quality.tasks SET state = 'closed', closed_at = now(), "
                         "closed_run_id = %s WHERE dataset_id = %s AND rule = %s AND "
                         "state = 'open'", (run_id, table.dataset, o.rule.name))


def record(conn: psycopg.Connection, table: Table, run_id: int, count: int, outcomes: list,
           days: int, cal: WorkCalendar) -> None:
    for o in outcomes:
        if o.failed and not o.detail:
            o.detail = f"{o.failed} of {o.checked} rows: {reason(o.rule)}"
    _samples(conn, table, outcomes)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO quality.results (run_id, rule, kind, dimension, hard, checked, failed, "
            "passed, detail, sample) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(run_id, o.rule.name, o.rule.kind, dimension(o.rule), o.rule.hard, o.checked,
              o.failed, o.failed == 0, o.detail,
              Jsonb(o.sample)) for o in outcomes])
    _quarantine(conn, table, run_id, outcomes)
    score = _scores(conn, table, run_id, outcomes)
    _tasks(conn, table, run_id, outcomes, days, cal)
    conn.execute("UPDATE quality.runs SET state = 'succeeded', finished_at = now(), "
                 "row_count = %s, columns = %s, score = %s WHERE id = %s",
                 (count, Jsonb(table.columns), score, run_id))
