"""Reading a governed dataset for a consumer: the asked fields, filtered, kept to the grant's
rows, one page at a time by keyset on the primary key, masked before anything leaves here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from cityops.errors import Conflict, NotFound
from cityops.principal import Principal
from datafoundation.services import request as rq
from datafoundation.services.access import (
    EVERYTHING_MASKED,
    Access,
    access_for,
    check_request,
    mask_kinds,
)
from datafoundation.services.masking import mask_rows

MAX_LIMIT = 10_000


@dataclass
class RowsQuery:
    fields: str | None = None          # comma-separated
    filters: list[str] = field(default_factory=list)
    after: str | None = None           # the cursor of the previous page
    limit: int = 1000


@dataclass
class Page:
    dataset: str
    fields: list[str]
    rows: list[dict[str, Any]]
    next: str | None
    masked: dict[str, str]  # field -> mask kind applied
    # fields served in the clear only because the grant names them (audited by the caller)
    unmasked: list[str] = field(default_factory=list)


async def load(conn: AsyncConnection, dataset_id: str) -> tuple[dict, list[dict]]:
    """The dataset and its registered fields (in position order)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM datasets WHERE id = %s", (dataset_id,))
        dataset = await cur.fetchone()
        if dataset is None:
            raise NotFound(f"dataset {dataset_id!r} is not registered")
        await cur.execute("SELECT name, data_type, title, element_id, sensitivity, mask_kind"
                          " FROM dataset_fields WHERE dataset_id = %s ORDER BY position",
                          (dataset_id,))
        return dataset, await cur.fetchall()


async def _has_deleted_marker(conn: AsyncConnection, schema: str, table: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
        " AND column_name = '_deleted_at'", (schema, table))
    return await cur.fetchone() is not None


def _conditions(filters: list[rq.Filter], scope: dict) -> tuple[list[sql.Composable], list]:
    where: list[sql.Composable] = []
    params: list[Any] = []
    for flt in filters:
        col = sql.Identifier(flt.field)
        if flt.op == "eq":
            where.append(sql.SQL("{} = %s").format(col))
            params.append(flt.values[0])
        elif flt.op == "in":
            where.append(sql.SQL("{} = ANY(%s)").format(col))
            params.append(list(flt.values))
        else:
            for bound, op in zip(flt.values, (">=", "<="), strict=True):
                if bound is not None:
                    where.append(sql.SQL("{} " + op + " %s").format(col))
                    params.append(bound)
    for name, condition in scope.items():  # the grant's rows, always
        col = sql.Identifier(name)
        if "in" in condition:
            where.append(sql.SQL("{}::text = ANY(%s)").format(col))
            params.append([str(v) for v in condition["in"]])
        else:
            where.append(sql.SQL("{}::text LIKE ANY(%s)").format(col))
            params.append([_like_prefix(str(p)) for p in condition.get("prefix", [])])
    return where, params


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _key_of(dataset: dict, kinds: dict[str, str]) -> list[str]:
    key = list(dataset["primary_key"])
    if not key:
        raise Conflict(f"dataset {dataset['id']} has no primary key: it cannot be paged")
    masked = [k for k in key if kinds.get(k, "none") != "none"]
    if masked:  # the cursor carries the key's values: a masked key would leak through it
        raise Conflict(f"dataset {dataset['id']}: its primary key {', '.join(masked)} is"
                       " masked, so it cannot be served page by page")
    return key


async def read(conn: AsyncConnection, principal: Principal, dataset_id: str, query: RowsQuery,
               now: datetime) -> Page:
    """One page of the dataset for the caller; Forbidden names what is not granted."""
    dataset, fields = await load(conn, dataset_id)
    types = {f["name"]: f["data_type"] for f in fields}
    names = list(types)
    access: Access = await access_for(conn, principal, dataset, now)
    # by default the granted fields, without the bookkeeping columns (_synced_at...)
    default = [n for n in names if not n.startswith("_")
               and (access.fields is None or n in access.fields)]
    selected = rq.select_fields(query.fields, names) if query.fields else default
    filters = [rq.parse_filter(f, types) for f in query.filters]
    kinds = mask_kinds(fields, access)
    check_request(access, dataset_id, selected, filters, kinds)
    key = _key_of(dataset, kinds)
    where, params = _conditions(filters, access.scope)
    schema, table = dataset_id.split(".", 1)
    if await _has_deleted_marker(conn, schema, table):
        where.append(sql.SQL("_deleted_at IS NULL"))  # gone at the source: kept, not served
    if query.after:
        after = rq.decode_cursor(query.after, key, types)
        where.append(sql.SQL("({}) > ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, key)),
            sql.SQL(", ").join(sql.Placeholder() * len(key))))
        params.extend(after)
    columns = list(dict.fromkeys([*selected, *key]))
    limit = max(1, min(query.limit, MAX_LIMIT))
    statement = sql.SQL("SELECT {} FROM {}.{} WHERE {} ORDER BY {} LIMIT %s").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema),
        sql.Identifier(table), sql.SQL(" AND ").join(where or [sql.SQL("true")]),
        sql.SQL(", ").join(map(sql.Identifier, key)))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(statement, [*params, limit + 1])
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = rq.encode_cursor([rows[-1][k] for k in key]) if more else None
    rows = [{f: r[f] for f in selected} for r in rows]
    applied = {f: kinds[f] for f in selected if kinds[f] != "none"}
    unmasked = [f for f in selected if f in access.unmasked and mask_kinds(
        [x for x in fields if x["name"] == f], EVERYTHING_MASKED)[f] != "none"]
    return Page(dataset_id, selected, mask_rows(rows, applied), cursor, applied, unmasked)


async def record_call(conn: AsyncConnection, dataset_id: str, caller: Principal, ok: bool,
                      rows: int, now: datetime, refused: str | None = None) -> None:
    """Count a call of the dataset service (refused ones too, with what was not granted)."""
    await conn.execute(
        "INSERT INTO dataset_calls (time, dataset_id, caller, key_id, ok, rows, refused)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (now, dataset_id, caller.name, caller.key_id, ok, rows, refused))
