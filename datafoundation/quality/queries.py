"""Quality as the API reads it (async): rule sets, runs, results, scores, tasks and held rows,
each kept to the caller's departments (the providing department of the dataset). Rows shown
from quarantine are masked by their fields' mask kinds, like every other read."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import NotFound
from datafoundation.services.masking import mask_rows


async def _rows(conn: AsyncConnection, query: str, args: tuple) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, args)
    return await cur.fetchall()


def _scope(departments: frozenset[str] | None, column: str = "d.department_id"
           ) -> tuple[str, tuple]:
    if departments is None:
        return "true", ()
    return f"{column} = ANY(%s)", (list(departments),)


async def dataset_department(conn: AsyncConnection, dataset: str) -> str:
    rows = await _rows(conn, "SELECT department_id FROM datasets WHERE id = %s", (dataset,))
    if not rows:
        raise NotFound(f"dataset {dataset} is not registered")
    return rows[0]["department_id"]


async def rule_sets(conn: AsyncConnection, departments: frozenset[str] | None,
                    dataset: str | None) -> list[dict]:
    where, args = _scope(departments)
    return await _rows(conn, f"""
        SELECT rs.dataset_id AS dataset, d.name, d.department_id AS department,
               rs.correction_days, rs.loaded_at, rs.loaded_by, rs.source,
               (SELECT coalesce(json_agg(json_build_object(
                    'name', r.name, 'kind', r.kind, 'dimension', r.dimension, 'hard', r.hard,
                    'spec', r.spec, 'description', r.description) ORDER BY r.position), '[]')
                FROM quality.rules r WHERE r.dataset_id = rs.dataset_id) AS rules
        FROM quality.rule_sets rs JOIN datasets d ON d.id = rs.dataset_id
        WHERE {where} AND (%s::text IS NULL OR rs.dataset_id = %s) ORDER BY rs.dataset_id""",
                       (*args, dataset, dataset))


_RUN = ("r.id, r.dataset_id AS dataset, d.department_id AS department, r.trigger, r.state, "
        "r.started_at, r.finished_at, r.row_count, r.score::float AS score, r.error")


async def runs(conn: AsyncConnection, departments: frozenset[str] | None,
               dataset: str | None, limit: int) -> list[dict]:
    where, args = _scope(departments)
    return await _rows(conn, f"SELECT {_RUN} FROM quality.runs r JOIN datasets d ON "
                             f"d.id = r.dataset_id WHERE {where} AND (%s::text IS NULL OR "
                             "r.dataset_id = %s) ORDER BY r.id DESC LIMIT %s",
                       (*args, dataset, dataset, limit))


async def run(conn: AsyncConnection, run_id: int | None, dataset: str | None) -> dict:
    """A run with its results: `run_id`, or the dataset's latest finished run."""
    rows = await _rows(conn, f"SELECT {_RUN} FROM quality.runs r JOIN datasets d ON "
                             "d.id = r.dataset_id WHERE (%s::bigint IS NOT NULL AND r.id = %s) "
                             "OR (%s::bigint IS NULL AND r.dataset_id = %s AND r.state <> "
                             "'running') ORDER BY r.id DESC LIMIT 1",
                       (run_id, run_id, run_id, dataset))
    if not rows:
        raise NotFound(f"quality run {run_id}" if run_id is not None
                       else f"dataset {dataset} has no quality run")
    found = rows[0]
    found["results"] = await _rows(
        conn, "SELECT rule, kind, dimension, hard, checked, failed, passed, detail, sample "
              "FROM quality.results WHERE run_id = %s ORDER BY passed, rule", (found["id"],))
    return found


async def scores(conn: AsyncConnection, departments: frozenset[str] | None, by: str,
                 days: int) -> list[dict]:
    """Daily scores per dimension, by dataset or by providing department (its datasets'
    mean), over the last `days` days, oldest first."""
    where, args = _scope(departments, "s.department_id")
    key = "s.dataset_id" if by == "dataset" else "s.department_id"
    return await _rows(conn, f"""
        SELECT s.day, {key} AS key, s.dimension, round(avg(s.score), 2)::float AS score,
               sum(s.rules)::int AS rules, sum(s.failed_rules)::int AS failed_rules
        FROM quality.daily_scores s
        WHERE {where} AND s.day > (now() AT TIME ZONE 'Asia/Shanghai')::date - %s
        GROUP BY s.day, {key}, s.dimension ORDER BY s.day, {key}, s.dimension""",
                       (*args, days))


async def tasks(conn: AsyncConnection, departments: frozenset[str] | None,
                state: str | None, dataset: str | None) -> list[dict]:
    where, args = _scope(departments, "t.department_id")
    return await _rows(conn, f"""
        SELECT t.id, t.dataset_id AS dataset, d.name AS dataset_name, t.rule,
               t.department_id AS department, t.state, t.failed, t.detail, t.sample,
               t.opened_at, t.due_at, t.closed_at, t.opened_run_id, t.last_run_id,
               t.closed_run_id, (t.state = 'open' AND t.due_at < now()) AS overdue,
               t.closed_by, t.resolution,
               coalesce((SELECT jsonb_agg(jsonb_build_object('id', n.id, 'kind', n.kind,
                        'note', n.note, 'author', n.author, 'at', n.at) ORDER BY n.id)
                         FROM quality.task_notes n WHERE n.task_id = t.id), '[]') AS notes
        FROM quality.tasks t JOIN datasets d ON d.id = t.dataset_id
        WHERE {where} AND (%s::text IS NULL OR t.state = %s)
          AND (%s::text IS NULL OR t.dataset_id = %s)
        ORDER BY t.state DESC, t.due_at, t.id""", (*args, state, state, dataset, dataset))


async def held(conn: AsyncConnection, dataset: str, limit: int) -> list[dict]:
    """The rows a hard rule holds back now, masked."""
    rows = await _rows(conn, "SELECT id, rule, row_key, row_data, reason, run_id, found_at "
                             "FROM quality.quarantine WHERE dataset_id = %s AND released_at "
                             "IS NULL ORDER BY id LIMIT %s", (dataset, limit))
    masks = {r["name"]: r["kind"] for r in await _rows(
        conn, "SELECT name, CASE WHEN mask_kind = 'none' AND sensitivity >= 3 THEN 'full' "
              "ELSE mask_kind END AS kind FROM dataset_fields WHERE dataset_id = %s",
        (dataset,))}
    for row in rows:
        row["row_data"] = mask_rows([row["row_data"]], masks)[0]
    return rows
