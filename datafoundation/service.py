"""The register as the API sees it (async): lists kept to the caller's departments, writes,
connection tests and queued runs. Credentials go in encrypted and never come back out:
every read here selects `secret IS NOT NULL`, never the secret."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cityops.errors import InvalidInput, NotFound, PlatformError
from datafoundation.secrets import encrypt

SYSTEM_COLUMNS = ("slug, name, department_id AS department, purpose, vendor, deployment, "
                  "database_kind, contact, dengbao_level, status")


async def _rows(conn: AsyncConnection, sql: str, args: tuple) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(sql, args)
    return await cur.fetchall()


def _scope(departments: frozenset[str] | None, column: str) -> tuple[str, tuple]:
    if departments is None:
        return "true", ()
    return f"{column} = ANY(%s)", (list(departments),)


async def list_systems(conn: AsyncConnection, departments: frozenset[str] | None) -> list:
    where, args = _scope(departments, "department_id")
    return await _rows(conn, f"SELECT id, {SYSTEM_COLUMNS} FROM systems WHERE {where} "
                             "ORDER BY id", args)


async def add_system(conn: AsyncConnection, fields: dict[str, Any]) -> dict[str, Any]:
    values = {("department_id" if k == "department" else k): v for k, v in fields.items()}
    cols = list(values)
    rows = await _rows(conn, f"INSERT INTO systems ({', '.join(cols)}) VALUES "
                             f"({', '.join(['%s'] * len(cols))}) RETURNING id, {SYSTEM_COLUMNS}",
                       tuple(values.values()))
    return rows[0]


async def update_system(conn: AsyncConnection, system_id: int,
                        fields: dict[str, Any]) -> dict[str, Any]:
    values = {("department_id" if k == "department" else k): v for k, v in fields.items()}
    if values:
        sets = ", ".join(f"{k} = %s" for k in values)
        await conn.execute(f"UPDATE systems SET {sets} WHERE id = %s",
                           (*values.values(), system_id))
    rows = await _rows(conn, f"SELECT id, {SYSTEM_COLUMNS} FROM systems WHERE id = %s",
                       (system_id,))
    if not rows:
        raise NotFound(f"system {system_id} does not exist")
    return rows[0]


async def system_department(conn: AsyncConnection, table: str, key: int,
                            field: str | None = None) -> str:
    """The owning department of a system, source or sync: NotFound naming it, or, when a body
    `field` named it, InvalidInput naming the field (the request, not the path, is wrong)."""
    joins = {"sync_runs": "sync_runs r JOIN syncs s ON s.id = r.sync_id JOIN sources so ON "
                          "so.id = s.source_id JOIN systems sy ON sy.id = so.system_id",
             "systems": "systems sy",
             "sources": "sources so JOIN systems sy ON sy.id = so.system_id",
             "syncs": "syncs s JOIN sources so ON so.id = s.source_id "
                      "JOIN systems sy ON sy.id = so.system_id"}
    alias = {"systems": "sy", "sources": "so", "syncs": "s", "sync_runs": "r"}[table]
    rows = await _rows(conn, f"SELECT sy.department_id FROM {joins[table]} "
                             f"WHERE {alias}.id = %s", (key,))
    if not rows:
        if field:
            raise InvalidInput(f"{field}: {table[:-1]} {key} does not exist")
        raise NotFound(f"{table[:-1].replace('_', ' ')} {key} does not exist")
    return rows[0]["department_id"]


SOURCE_SELECT = ("SELECT so.id, so.system_id, so.name, so.kind, so.settings, "
                 "so.secret IS NOT NULL AS has_credentials FROM sources so "
                 "JOIN systems sy ON sy.id = so.system_id")


async def list_sources(conn: AsyncConnection, departments: frozenset[str] | None) -> list:
    where, args = _scope(departments, "sy.department_id")
    return await _rows(conn, f"{SOURCE_SELECT} WHERE {where} ORDER BY so.id", args)


async def add_source(conn: AsyncConnection, secret_key: str, fields: dict[str, Any],
                     credentials: dict[str, str] | None) -> dict[str, Any]:
    token = encrypt(secret_key, credentials) if credentials else None
    cur = await conn.execute(
        "INSERT INTO sources (system_id, name, kind, settings, secret) VALUES (%s, %s, %s, %s, "
        "%s) RETURNING id", (fields["system_id"], fields["name"], fields["kind"],
                             Jsonb(fields["settings"]), token))
    new_id = (await cur.fetchone())[0]
    return (await _rows(conn, f"{SOURCE_SELECT} WHERE so.id = %s", (new_id,)))[0]


async def test_source(conn: AsyncConnection, secret_key: str, source_id: int,
                      table: str | None) -> dict[str, Any]:
    """Connect (and read a table's columns if named) as a sync would; a failure is the
    answer, with the source's own error text (never the password)."""
    from datafoundation.runner import open_source

    rows = await _rows(conn, "SELECT name, kind, settings, secret FROM sources WHERE id = %s",
                       (source_id,))
    if not rows:
        raise NotFound(f"source {source_id} does not exist")

    def probe() -> dict[str, Any]:
        source = None
        try:
            source = open_source(rows[0]["name"], rows[0]["kind"], rows[0]["settings"],
                                 rows[0]["secret"], secret_key)
            source.connect()
            columns = [c.name for c in source.columns(table)] if table else []
            return {"ok": True, "error": None, "columns": columns}
        except PlatformError as err:
            return {"ok": False, "error": f"{err.code}: {err.detail}", "columns": []}
        finally:
            if source is not None:
                source.close()

    return await asyncio.to_thread(probe)


SYNC_SELECT = ("SELECT s.id, s.source_id, s.object, s.target_table, s.mode, s.cursor_column, "
               "s.primary_key, s.deletes, s.soft_delete_column, s.contract, s.schedule, "
               "s.batch_rows, s.split_ranges, s.enabled, s.flagged, "
               "'raw_' || sy.slug AS target_schema "
               "FROM syncs s JOIN sources so ON so.id = s.source_id "
               "JOIN systems sy ON sy.id = so.system_id")


async def list_syncs(conn: AsyncConnection, departments: frozenset[str] | None) -> list:
    where, args = _scope(departments, "sy.department_id")
    return await _rows(conn, f"{SYNC_SELECT} WHERE {where} ORDER BY s.id", args)


async def add_sync(conn: AsyncConnection, fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("mode") == "cdc":
        kind = await _rows(conn, "SELECT kind FROM sources WHERE id = %s",
                           (fields["source_id"],))
        if kind and kind[0]["kind"] not in ("mariadb", "mysql"):
            raise InvalidInput(f"mode: cdc follows a MariaDB/MySQL binlog; source "
                               f"{fields['source_id']} is {kind[0]['kind']}")
    cols = list(fields)
    cur = await conn.execute(f"INSERT INTO syncs ({', '.join(cols)}) VALUES "
                             f"({', '.join(['%s'] * len(cols))}) RETURNING id",
                             tuple(fields.values()))
    new_id = (await cur.fetchone())[0]
    return (await _rows(conn, f"{SYNC_SELECT} WHERE s.id = %s", (new_id,)))[0]


async def list_runs(conn: AsyncConnection, departments: frozenset[str] | None,
                    sync_id: int | None, limit: int) -> list:
    where, args = _scope(departments, "sy.department_id")
    if sync_id is not None:
        where, args = f"{where} AND r.sync_id = %s", (*args, sync_id)
    return await _rows(
        conn, "SELECT r.id, r.sync_id, r.state, r.attempt, r.started_at, r.finished_at, "
              "r.rows_read, r.rows_written, r.rows_deleted, r.rows_quarantined, "
              "r.rows_expected, r.drift, r.error FROM sync_runs r "
              "JOIN syncs s ON s.id = r.sync_id JOIN sources so ON so.id = s.source_id "
              f"JOIN systems sy ON sy.id = so.system_id WHERE {where} ORDER BY r.id DESC "
              f"LIMIT {int(limit)}", args)


async def quarantined(conn: AsyncConnection, run_id: int, limit: int) -> list:
    return await _rows(conn, "SELECT id, source, source_table, row, reason, created_at FROM "
                             f"sync_quarantine WHERE run_id = %s ORDER BY id LIMIT {int(limit)}",
                       (run_id,))


async def run_progress(conn: AsyncConnection, run_id: int) -> dict[str, Any]:
    """A run's progress now, with seconds left when its size is known (rows expected, read
    at the rate so far)."""
    rows = await _rows(conn, "SELECT id, sync_id, state, attempt, rows_read, rows_written, "
                             "rows_quarantined, rows_expected, error, extract(epoch FROM "
                             "coalesce(finished_at, now()) - started_at) AS elapsed_s "
                             "FROM sync_runs WHERE id = %s", (run_id,))
    if not rows:
        raise NotFound(f"sync run {run_id} does not exist")
    run = rows[0]
    elapsed, read, expected = float(run.pop("elapsed_s")), run["rows_read"], run["rows_expected"]
    left = None
    if run["state"] == "running" and expected and read and elapsed > 0:
        left = round(max(0, expected - read) / (read / elapsed), 1)
    return {**run, "elapsed_s": round(elapsed, 1), "seconds_left": left}
