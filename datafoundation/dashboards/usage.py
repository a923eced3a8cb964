"""Recording calls of the catalogue's data route per resource (resource_calls)."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from cityops.principal import Principal


async def record_call(
    conn: AsyncConnection, resource_code: str, caller: Principal, ok: bool, rows: int,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO resource_calls (time, resource_code, caller, key_id, ok, rows)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (now, resource_code, caller.name, caller.key_id, ok, rows),
    )


async def record_refusal(
    conn: AsyncConnection, resource_code: str, caller: Principal, now: datetime
) -> None:
    """A refused call is counted too; committed at once because the refusal that follows
    rolls the request's transaction back."""
    await record_call(conn, resource_code, caller, False, 0, now)
    await conn.commit()
