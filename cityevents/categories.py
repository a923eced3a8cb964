"""Event categories (大类/小类, 立案/结案标准, 责任单位) and their time limits, kept by the data
administrator from the console. A time limit is read when a step's deadline is set
(cityevents/service.py `limits_for`): a change applies to deadlines set after it, and a
deadline already running keeps its time."""

from __future__ import annotations

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Conflict, InvalidInput, NotFound

_FIELDS = ("kind", "major", "minor", "department_id", "register_rule", "close_rule")


async def _one(conn: AsyncConnection, code: str) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM event_categories WHERE code = %s", (code,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"event category {code!r} is not registered")
    return row


async def _department_known(conn: AsyncConnection, department: str | None) -> None:
    if department is None:
        return
    cur = await conn.execute("SELECT 1 FROM departments WHERE id = %s", (department,))
    if await cur.fetchone() is None:
        raise InvalidInput(f"department_id: {department!r} is not registered")


async def create_category(conn: AsyncConnection, code: str, values: dict) -> dict:
    await _department_known(conn, values.get("department_id"))
    try:
        await conn.execute(
            "INSERT INTO event_categories (code, kind, major, minor, department_id,"
            " register_rule, close_rule) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (code, *(values.get(f) for f in _FIELDS)))
    except psycopg.errors.UniqueViolation as err:
        raise Conflict(f"code: event category {code!r} exists already") from err
    return await _one(conn, code)


async def change_category(conn: AsyncConnection, code: str, values: dict) -> dict:
    await _one(conn, code)
    await _department_known(conn, values.get("department_id"))
    await conn.execute(
        "UPDATE event_categories SET kind = %s, major = %s, minor = %s, department_id = %s,"
        " register_rule = %s, close_rule = %s WHERE code = %s",
        (*(values.get(f) for f in _FIELDS), code))
    return await _one(conn, code)


async def set_time_limit(conn: AsyncConnection, limit: dict) -> dict:
    """Set one limit (category x urgency x step); category '*' is every category's default."""
    if limit["category_code"] != "*":
        await _one(conn, limit["category_code"])
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO event_time_limits (category_code, urgency, step, amount, unit)"
            " VALUES (%(category_code)s, %(urgency)s, %(step)s, %(amount)s, %(unit)s)"
            " ON CONFLICT (category_code, urgency, step) DO UPDATE"
            " SET amount = excluded.amount, unit = excluded.unit"
            " RETURNING category_code, urgency, step, amount::float8 AS amount, unit", limit)
        return await cur.fetchone()  # type: ignore[return-value]
