"""一本账: every governed dataset keeps its catalogue entry (政务信息资源目录) current — its
fields with their data elements, update cycle, the system it comes from, its size and latest
quality score — and has a registration record for the national 公共数据资源登记 platform.

Synchronous (psycopg.Connection) because its callers are the data foundation's jobs: the
layer-model runner after each build, and `cityops catalogue sync`. An entry is created once
as conditionally shared; the provider's later choices (sharing type and conditions, name,
classification, openness) are never overwritten by a sync."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from cityops.errors import NotFound, PlatformError
from datafoundation.catalogue.resources import SEQUENCE

log = logging.getLogger(__name__)
# local classification of governed datasets: 部门信息资源 (3) for the raw and standard layers,
# 主题信息资源 (2) for topics; the provider may reclassify an entry afterwards
CLASS_BY_LAYER = {"raw": "3.01.001", "standard": "3.02.001", "topic": "2.01.001"}
DEFAULT_CONDITIONS = "依申请共享：限履职需要，敏感字段脱敏提供"
LAYER_NAMES = {"raw": "贴源层", "standard": "标准层", "topic": "主题层"}


def _next_code(conn: psycopg.Connection, classification: str) -> str:
    """信息资源代码 = 分类码 + 顺序码, serialised per classification (as resources.py does)."""
    conn.execute("SELECT pg_advisory_xact_lock(7413701, hashtext(%s))", (classification,))
    n = conn.execute(f"SELECT coalesce(max({SEQUENCE}), 0) + 1 FROM resources"
                     " WHERE classification = %s", (classification,)).fetchone()[0]
    return f"{classification}-{n:04d}"


def _items(conn: psycopg.Connection, dataset_id: str) -> list[dict]:
    """信息项: the dataset's fields (bookkeeping columns, named _..., left out)."""
    rows = conn.execute(
        "SELECT name, data_type, title, element_id, sensitivity FROM dataset_fields"
        " WHERE dataset_id = %s AND name NOT LIKE '\\_%%' ORDER BY position",
        (dataset_id,)).fetchall()
    return [{"name": n, "type": t, "title": title, "element_id": e, "sensitivity": s}
            for n, t, title, e, s in rows]


def _quality(conn: psycopg.Connection, dataset_id: str) -> tuple:
    """(score, when) of the latest scored quality run, when the quality tables exist."""
    if conn.execute("SELECT to_regclass('quality.runs')").fetchone()[0] is None:
        return None, None
    row = conn.execute(
        "SELECT score, finished_at FROM quality.runs WHERE dataset_id = %s AND state ="
        " 'succeeded' AND score IS NOT NULL ORDER BY id DESC LIMIT 1", (dataset_id,)).fetchone()
    return row if row else (None, None)


def _row_count(conn: psycopg.Connection, dataset_id: str) -> int | None:
    schema, table = dataset_id.split(".", 1)
    if conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0] is None:
        return None
    live = conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " AND column_name = '_deleted_at'", (schema, table)).fetchone()
    where = sql.SQL(" WHERE _deleted_at IS NULL" if live else "")
    return conn.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(table)) + where).fetchone()[0]


def _create(conn: psycopg.Connection, d: dict, items: str, now: datetime) -> str:
    code = _next_code(conn, CLASS_BY_LAYER[d["layer"]])
    summary = d["description"] or (
        f"{d['department_name']}{LAYER_NAMES[d['layer']]}数据集 {d['id']}"
        + (f"，来自{d['system_name']}" if d["system_name"] else ""))
    conn.execute(
        "INSERT INTO resources (code, classification, name, provider_id, summary, format,"
        " items, sharing_type, sharing_conditions, update_cycle, published_on, source_kind,"
        " source_ref, system_id, created_by) VALUES (%s, %s, %s, %s, %s, 'api/json', %s,"
        " 'conditional', %s, %s, %s, 'dataset', %s, %s, 'catalogue-sync')",
        (code, CLASS_BY_LAYER[d["layer"]], d["name"], d["department_id"], summary, items,
         DEFAULT_CONDITIONS, d["update_cycle"], now.date(), d["id"], d["system_id"]))
    return code


def sync_dataset(conn: psycopg.Connection, dataset_id: str,
                 now: datetime | None = None) -> tuple[str, str]:
    """Register or refresh one dataset's entry: (resource code, 'created'|'updated'|'same')."""
    now = now or datetime.now(UTC)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT d.*, s.name AS system_name, dep.name AS department_name FROM datasets d"
            " LEFT JOIN systems s ON s.id = d.system_id JOIN departments dep"
            " ON dep.id = d.department_id WHERE d.id = %s FOR UPDATE OF d", (dataset_id,))
        d = cur.fetchone()
        if d is None:
            raise NotFound(f"dataset {dataset_id} is not registered")
        items = orjson.dumps(_items(conn, dataset_id)).decode()
        code = d["resource_code"] or (conn.execute(
            "SELECT code FROM resources WHERE source_kind = 'dataset' AND source_ref = %s",
            (dataset_id,)).fetchone() or [None])[0]
        outcome = "same"
        if code is None:
            code, outcome = _create(conn, d, items, now), "created"
        score, scored_at = _quality(conn, dataset_id)
        n = _row_count(conn, dataset_id)
        changed = conn.execute(
            "UPDATE resources SET items = %s::jsonb, update_cycle = %s, system_id = %s,"
            " row_count = %s, quality_score = %s, quality_scored_at = %s, updated_at = %s"
            " WHERE code = %s AND (items, update_cycle, system_id, row_count, quality_score,"
            " quality_scored_at) IS DISTINCT FROM (%s::jsonb, %s, %s, %s, %s, %s)",
            (items, d["update_cycle"], d["system_id"], n, score,
             scored_at, now, code, items, d["update_cycle"], d["system_id"], n, score,
             scored_at)).rowcount
        if outcome == "same" and changed:
            outcome = "updated"
        conn.execute("UPDATE datasets SET resource_code = %s WHERE id = %s"
                     " AND resource_code IS DISTINCT FROM %s", (code, dataset_id, code))
        conn.execute("INSERT INTO resource_registrations (resource_code) VALUES (%s)"
                     " ON CONFLICT DO NOTHING", (code,))
    return code, outcome


def sync_all(conn: psycopg.Connection, now: datetime | None = None) -> dict[str, tuple]:
    """Every governed dataset's entry; dataset id -> (code, outcome). One dataset failing
    (say, its table dropped mid-way) is reported as ('', 'failed: ...'); the rest go on."""
    ids = [r[0] for r in conn.execute("SELECT id FROM datasets ORDER BY id").fetchall()]
    done: dict[str, tuple] = {}
    for dataset in ids:
        try:
            done[dataset] = sync_dataset(conn, dataset, now)
        except (psycopg.Error, PlatformError) as err:
            log.warning("catalogue: %s not synced: %s", dataset, err)
            done[dataset] = ("", f"failed: {str(err).splitlines()[0]}")
    return done


def after_build(conn: psycopg.Connection, dataset_id: str) -> None:
    """The hook a layer model's run calls: a catalogue failure is logged, never fails the
    build that already committed its data."""
    try:
        code, outcome = sync_dataset(conn, dataset_id)
        log.info("catalogue: %s -> %s (%s)", dataset_id, code, outcome)
    except (psycopg.Error, PlatformError) as err:
        log.warning("catalogue: %s not synced: %s", dataset_id, err)
