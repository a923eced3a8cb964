"""SQL reads of the registry, with filters and pagination."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import NotFound

GATEWAY_COLUMNS = (
    "g.id, g.name, g.site_id AS site, g.department_id AS department, g.created_at,"
    " g.revoked_at, g.last_status, g.last_seen_at, g.config_version,"
    " (SELECT count(*) FROM devices d WHERE d.gateway_id = g.id) AS devices"
)
DEVICE_COLUMNS = (
    "d.id, d.title, d.gateway_id AS gateway, d.profile_id AS profile, d.address,"
    " d.site_id AS site, d.department_id AS department, d.latitude, d.longitude,"
    " d.poll_interval_s, d.timeout_s, d.created_at"
)
PROFILE_COLUMNS = (
    "p.id, p.protocol, p.category, p.title, p.updated_at,"
    " (SELECT count(*) FROM devices d WHERE d.profile_id = p.id) AS devices"
)


def where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    """`column = value` for every filter given; a list value means `column = ANY(list)`, and
    a key ending in a comparison ("time >=") compares."""
    clauses, params = [], []
    for column, value in filters.items():
        if value is None:
            continue
        if column.endswith((" >=", " <=", " <", " >", " <@")):
            clauses.append(f"{column} %s")
        elif isinstance(value, list | tuple | frozenset):
            clauses.append(f"{column} = ANY(%s)")
        else:
            clauses.append(f"{column} = %s")
        params.append(list(value) if isinstance(value, frozenset) else value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


async def page(
    conn: AsyncConnection, select: str, from_: str, filters: dict[str, Any], order: str,
    limit: int, offset: int,
) -> tuple[list[dict], int]:
    """One page of rows and the total count. `select`, `from_` and `order` are code, never
    caller input; only the filter values are parameters."""
    clause, params = where(filters)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT count(*) AS n FROM {from_}{clause}", params)
        total = (await cur.fetchone())["n"]  # type: ignore[index]
        await cur.execute(
            f"SELECT {select} FROM {from_}{clause} ORDER BY {order} LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return await cur.fetchall(), total


async def one(conn: AsyncConnection, select: str, from_: str, key: str, value: str,
              what: str) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {select} FROM {from_} WHERE {key} = %s", (value,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{what} {value!r} is not registered")
    return row


async def gateway(conn: AsyncConnection, gateway_id: str) -> dict:
    return await one(conn, GATEWAY_COLUMNS, "gateways g", "g.id", gateway_id, "gateway")


async def device(conn: AsyncConnection, device_id: str) -> dict:
    return await one(conn, DEVICE_COLUMNS, "devices d", "d.id", device_id, "device")


async def profile(conn: AsyncConnection, profile_id: str) -> dict:
    return await one(conn, f"{PROFILE_COLUMNS}, p.body", "profiles p", "p.id", profile_id,
                     "profile")


async def points(conn: AsyncConnection, device_id: str) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT name, title, unit, data_type, writable FROM points WHERE device_id = %s"
            " ORDER BY name", (device_id,),
        )
        return await cur.fetchall()


async def exists(conn: AsyncConnection, table: str, key: str) -> bool:
    cur = await conn.execute(f"SELECT 1 FROM {table} WHERE id = %s", (key,))
    return await cur.fetchone() is not None
