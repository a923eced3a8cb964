"""数据全景: every governed dataset counted — per unit (department), by system and dataset,
structured rows and unstructured files, 昨日增量, quality score and trend, sync health, the
数据生产加工过程 of each layer (runs, rows in/out/quarantined) and the use of each dataset's
service. The quality and layer-model tables belong to other parts of the data foundation and
may be absent (to_regclass): their figures are then null, never an error.

Rows are counted exactly (live rows: not marked deleted at the source); 昨日增量 is what the
loads of yesterday wrote (sync runs for the raw layer, model runs above it), so it needs no
scan of the tables."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from datafoundation.dashboards.figures import county_day

TREND_DAYS = 14


async def _all(conn: AsyncConnection, query: str, params: dict | None = None) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params or {})
        return await cur.fetchall()


async def _present(conn: AsyncConnection, *tables: str) -> bool:
    cur = await conn.execute("SELECT bool_and(to_regclass(t) IS NOT NULL) FROM unnest(%s::text[])"
                             " t", (list(tables),))
    return bool((await cur.fetchone())[0])


async def _live_rows(conn: AsyncConnection, dataset_id: str) -> int | None:
    schema, table = dataset_id.split(".", 1)
    found = await _all(conn, "SELECT bool_or(column_name = '_deleted_at') AS marked FROM"
                       " information_schema.columns WHERE table_schema = %(s)s AND"
                       " table_name = %(t)s", {"s": schema, "t": table})
    if found[0]["marked"] is None:
        return None  # registered, not built yet
    query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema),
                                                         sql.Identifier(table))
    if found[0]["marked"]:
        query += sql.SQL(" WHERE _deleted_at IS NULL")
    cur = await conn.execute(query)
    return (await cur.fetchone())[0]


_DATASETS = """
SELECT d.id, d.name, d.layer, d.department_id, dep.name AS department_name, d.system_id,
    s.name AS system_name, d.sync_id, d.resource_code,
    coalesce((SELECT sum(r.rows_written) FROM sync_runs r WHERE r.sync_id = d.sync_id
        AND r.finished_at >= %(y0)s AND r.finished_at < %(y1)s), 0) AS synced_yesterday,
    (SELECT count(*) FROM dataset_calls c WHERE c.dataset_id = d.id AND c.ok
        AND c.time >= %(month)s) AS calls_30d,
    (SELECT count(DISTINCT c.caller) FROM dataset_calls c WHERE c.dataset_id = d.id AND c.ok
        AND c.time >= %(month)s) AS consumers_30d,
    (SELECT count(*) FROM grants g WHERE g.resource_code = d.resource_code
        AND g.revoked_at IS NULL AND g.expires_at > %(now)s) AS grants
FROM datasets d JOIN departments dep ON dep.id = d.department_id
LEFT JOIN systems s ON s.id = d.system_id ORDER BY d.department_id, d.id
"""
_MODEL_YESTERDAY = """
SELECT m.target, sum(r.rows_out) AS rows FROM layer_model_runs r
JOIN layer_models m ON m.name = r.model WHERE r.state = 'succeeded'
    AND r.finished_at >= %(y0)s AND r.finished_at < %(y1)s GROUP BY m.target
"""
_SCORES = """
SELECT dataset_id, day, round(avg(score), 2) AS score FROM quality.daily_scores
WHERE day > %(since)s GROUP BY dataset_id, day ORDER BY dataset_id, day
"""


async def datasets(conn: AsyncConnection, now: datetime, day: date) -> list[dict]:
    _day, y0, y1 = county_day(now, day)
    rows = await _all(conn, _DATASETS, {"y0": y0, "y1": y1, "now": now,
                                        "month": now - timedelta(days=30)})
    built = {}
    if await _present(conn, "layer_model_runs", "layer_models"):
        built = {r["target"]: r["rows"] for r in await _all(conn, _MODEL_YESTERDAY,
                                                             {"y0": y0, "y1": y1})}
    trends: dict[str, list[dict]] = {}
    if await _present(conn, "quality.daily_scores"):
        for r in await _all(conn, _SCORES, {"since": day - timedelta(days=TREND_DAYS)}):
            trends.setdefault(r["dataset_id"], []).append({"day": r["day"],
                                                            "score": r["score"]})
    for row in rows:
        row["rows"] = await _live_rows(conn, row["id"])
        row["rows_yesterday"] = row.pop("synced_yesterday") + (built.get(row["id"]) or 0)
        row["quality_trend"] = trends.get(row["id"], [])
        row["quality_score"] = (row["quality_trend"][-1]["score"] if row["quality_trend"]
                                else None)
    return rows


_SYNCS = """
SELECT s.id AS sync_id, sy.slug AS system, sy.department_id, so.name AS source,
    s.object, s.target_table, s.enabled, s.flagged,
    last.state AS last_state, last.finished_at AS last_run_at,
    (SELECT max(r.finished_at) FROM sync_runs r WHERE r.sync_id = s.id
        AND r.state = 'succeeded') AS last_success_at,
    (SELECT count(*) FROM sync_runs r WHERE r.sync_id = s.id AND r.state = 'failed'
        AND r.started_at >= %(week)s) AS failures_7d,
    (SELECT r.error FROM sync_runs r WHERE r.sync_id = s.id AND r.state = 'failed'
        ORDER BY r.id DESC LIMIT 1) AS last_error
FROM syncs s JOIN sources so ON so.id = s.source_id JOIN systems sy ON sy.id = so.system_id
LEFT JOIN LATERAL (SELECT state, finished_at FROM sync_runs r WHERE r.sync_id = s.id
    ORDER BY r.id DESC LIMIT 1) last ON true
ORDER BY sy.department_id, s.id
"""


async def syncs(conn: AsyncConnection, now: datetime) -> list[dict]:
    """Sync health: last success and the lag since, failures this week, the last error."""
    rows = await _all(conn, _SYNCS, {"week": now - timedelta(days=7)})
    for row in rows:
        ok = row["last_success_at"]
        # never negative: `now` is the API's clock, the run's end the database's
        row["lag_s"] = None if ok is None else max(0, round((now - ok).total_seconds()))
    return rows


_RAW_RUNS = """
SELECT 'raw' AS layer, count(*) AS runs, count(*) FILTER (WHERE state = 'failed') AS failed,
    coalesce(sum(rows_read), 0) AS rows_in, coalesce(sum(rows_written), 0) AS rows_out,
    coalesce(sum(rows_quarantined), 0) AS rows_quarantined
FROM sync_runs WHERE started_at >= %(since)s
"""
_MODEL_RUNS = """
SELECT m.layer, count(*) AS runs, count(*) FILTER (WHERE r.state = 'failed') AS failed,
    coalesce(sum(r.rows_in), 0) AS rows_in, coalesce(sum(r.rows_out), 0) AS rows_out,
    coalesce(sum(r.rows_rejected), 0) AS rows_quarantined
FROM layer_model_runs r JOIN layer_models m ON m.name = r.model
WHERE r.started_at >= %(since)s GROUP BY m.layer
"""


async def production(conn: AsyncConnection, since: datetime) -> list[dict]:
    """数据生产加工过程 since `since`: per layer, runs and rows in, out and set aside."""
    layers = {r["layer"]: r for r in await _all(conn, _RAW_RUNS, {"since": since})}
    if await _present(conn, "layer_model_runs", "layer_models"):
        layers |= {r["layer"]: r for r in await _all(conn, _MODEL_RUNS, {"since": since})}
    empty = {"runs": 0, "failed": 0, "rows_in": 0, "rows_out": 0, "rows_quarantined": 0}
    return [layers.get(k, {"layer": k, **empty}) for k in ("raw", "standard", "topic")]


_UNITS = """
SELECT d.id AS department_id, d.name,
    (SELECT count(*) FROM systems s WHERE s.department_id = d.id) AS systems,
    count(o.id) AS objects, coalesce(sum(o.size_bytes), 0) AS object_bytes,
    count(o.id) FILTER (WHERE o.uploaded_at >= %(y0)s AND o.uploaded_at < %(y1)s)
        AS objects_yesterday
FROM departments d LEFT JOIN objects o ON o.department_id = d.id
GROUP BY d.id ORDER BY d.id
"""


def _mean(values: list) -> float | None:
    present = [float(v) for v in values if v is not None]
    return round(sum(present) / len(present), 2) if present else None


def _units(units: list[dict], sets: list[dict]) -> list[dict]:
    """Per department: its systems, datasets, rows, 昨日增量, files, mean quality score."""
    out = []
    for unit in units:
        mine = [s for s in sets if s["department_id"] == unit["department_id"]]
        row = {**unit, "datasets": len(mine),
               "structured_rows": sum(s["rows"] or 0 for s in mine),
               "rows_yesterday": sum(s["rows_yesterday"] for s in mine),
               "quality_score": _mean([s["quality_score"] for s in mine])}
        if row["systems"] or row["datasets"] or row["objects"]:
            out.append(row)
    return sorted(out, key=lambda r: (-r["structured_rows"], r["department_id"]))


def _trend(sets: list[dict]) -> list[dict]:
    """The county's score per day: the mean over the datasets scored that day."""
    days: dict[date, list] = {}
    for s in sets:
        for point in s["quality_trend"]:
            days.setdefault(point["day"], []).append(point["score"])
    return [{"day": d, "score": _mean(v)} for d, v in sorted(days.items())]


async def board(conn: AsyncConnection, now: datetime, day: date | None = None) -> dict:
    day, y0, y1 = county_day(now, day)
    sets = await datasets(conn, now, day)
    units = _units(await _all(conn, _UNITS, {"y0": y0, "y1": y1}), sets)
    trend = _trend(sets)
    files = (await _all(conn, "SELECT count(*) AS n, coalesce(sum(size_bytes), 0) AS bytes,"
                        " count(*) FILTER (WHERE uploaded_at >= %(y0)s AND uploaded_at < %(y1)s)"
                        " AS yesterday FROM objects", {"y0": y0, "y1": y1}))[0]
    totals = {
        "systems": sum(u["systems"] for u in units), "datasets": len(sets),
        "structured_rows": sum(s["rows"] or 0 for s in sets),
        "rows_yesterday": sum(s["rows_yesterday"] for s in sets),
        # every file, also those of no department
        "objects": files["n"], "object_bytes": files["bytes"],
        "objects_yesterday": files["yesterday"],
        "quality_score": trend[-1]["score"] if trend else None,
        "dataset_calls_30d": sum(s["calls_30d"] for s in sets),
    }
    return {"as_of": now, "day": day, "totals": totals, "units": units, "datasets": sets,
            "quality_trend": trend, "syncs": await syncs(conn, now),
            "production": await production(conn, now - timedelta(days=7))}
