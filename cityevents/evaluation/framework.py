"""Reading the evaluation framework (data) and entering the scores measured by hand."""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput, NotFound


async def load(conn: AsyncConnection, code: str) -> dict:
    """The framework with its items (weights as floats) and each item's categories."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM evaluation_frameworks WHERE code = %s", (code,))
        framework = await cur.fetchone()
        if framework is None:
            raise NotFound(f"evaluation framework {code!r} does not exist")
        await cur.execute(
            "SELECT i.code, i.level1, i.name, i.weight::float8 AS weight, i.source,"
            " i.rate_weight::float8 AS rate_weight, coalesce(array_agg(c.category_code"
            " ORDER BY c.category_code) FILTER (WHERE c.category_code IS NOT NULL), '{}')"
            " AS categories FROM evaluation_items i LEFT JOIN evaluation_item_categories c"
            " ON c.framework_code = i.framework_code AND c.item_code = i.code"
            " WHERE i.framework_code = %s GROUP BY i.framework_code, i.code ORDER BY i.code",
            (code,))
        framework["items"] = await cur.fetchall()
    return framework


def month_start(period: date) -> date:
    return date(period.year, period.month, 1)


async def enter_score(conn: AsyncConnection, framework: str, item: str, period: date,
                      area: str, kind: str, score: float, entered_by: str) -> dict:
    """A 实地考察 (field) or 问卷 (survey) score of one item, period and place; entered again,
    the new score replaces the old (the audit log keeps both)."""
    cur = await conn.execute(
        "SELECT source FROM evaluation_items WHERE framework_code = %s AND code = %s",
        (framework, item))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"framework {framework!r} has no item {item!r}")
    if not 0 <= score <= 100:
        raise InvalidInput(f"score {score} is outside 0..100")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO evaluation_manual_scores (framework_code, item_code, period, area,"
            " kind, score, entered_by) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (framework_code, item_code, period, area, kind) DO UPDATE SET"
            " score = excluded.score, entered_by = excluded.entered_by, entered_at = now()"
            " RETURNING framework_code AS framework, item_code AS item, period, area, kind,"
            " score::float8 AS score, entered_by, entered_at",
            (framework, item, month_start(period), area, kind, score, entered_by))
        return await cur.fetchone()
