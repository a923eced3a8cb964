"""The indicator register: classes and definitions (versioned), and their values read back
with 同比 (the same period a year before), 环比 (the period before) and a trend."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Any

import yaml
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.calendar import COUNTY_TZ
from cityops.errors import InvalidInput, NotFound
from indicators.model import IndicatorDef, shift

FIELDS = ("name", "class_code", "definition", "caliber", "query", "breakdown", "unit",
          "frequency", "owner_department", "direction", "warning", "alarm", "excellence",
          "target", "open_event_category", "enabled")
YEAR = {"hourly": 24 * 365, "daily": 365, "weekly": 52, "monthly": 12}


def starter() -> dict[str, Any]:
    return yaml.safe_load(resources.files("indicators").joinpath("starter.yaml").read_text())


async def upsert(conn: AsyncConnection, ind: IndicatorDef, who: str) -> dict:
    """Create or change a definition; a change bumps its version."""
    cur = await conn.execute("SELECT 1 FROM indicator_classes WHERE code = %s",
                             (ind.class_code,))
    if await cur.fetchone() is None:
        raise InvalidInput(f"indicator {ind.code}: class {ind.class_code!r} does not exist")
    values = {f: getattr(ind, f) for f in FIELDS}
    columns = ", ".join(FIELDS)
    placeholders = ", ".join(f"%({f})s" for f in FIELDS)
    changed = " OR ".join(f"indicators.{f} IS DISTINCT FROM excluded.{f}" for f in FIELDS)
    updates = ", ".join(f"{f} = excluded.{f}" for f in FIELDS)
    cur = await conn.cursor(row_factory=dict_row).execute(
        f"INSERT INTO indicators (code, {columns}, updated_by) VALUES (%(code)s,"
        f" {placeholders}, %(who)s) ON CONFLICT (code) DO UPDATE SET {updates},"
        " version = indicators.version + 1, updated_by = excluded.updated_by,"
        f" updated_at = now() WHERE {changed} RETURNING *",
        {"code": ind.code, "who": who, **values})
    row = await cur.fetchone()
    return row if row is not None else await get(conn, ind.code)


async def load(conn: AsyncConnection, data: dict, who: str) -> int:
    """Classes then indicators of a starter-shaped document; returns indicators written."""
    for c in data.get("classes", []):
        await conn.execute(
            "INSERT INTO indicator_classes (code, name, parent) VALUES (%s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name, parent = excluded.parent",
            (c["code"], c["name"], c.get("parent")))
    defs = [IndicatorDef(**item) for item in data.get("indicators", [])]
    for ind in defs:
        await upsert(conn, ind, who)
    return len(defs)


async def get(conn: AsyncConnection, code: str) -> dict:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM indicators WHERE code = %s", (code,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"indicator {code} does not exist")
    return row


async def listing(conn: AsyncConnection, class_code: str | None = None) -> list[dict]:
    """Every indicator with its latest county value, light and last run's status."""
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT i.code, i.name, i.class_code, c.name AS class_name, i.unit, i.frequency,"
        " i.direction, i.warning, i.alarm, i.excellence, i.target, i.owner_department,"
        " i.breakdown, i.enabled, v.period_start, v.value, v.light, r.status AS last_status,"
        " r.error AS last_error"
        " FROM indicators i JOIN indicator_classes c ON c.code = i.class_code"
        " LEFT JOIN LATERAL (SELECT period_start, value, light FROM indicator_values"
        "   WHERE indicator_code = i.code AND dimension = '' ORDER BY period_start DESC"
        "   LIMIT 1) v ON true"
        " LEFT JOIN LATERAL (SELECT status, error FROM indicator_runs"
        "   WHERE indicator_code = i.code ORDER BY period_start DESC LIMIT 1) r ON true"
        " WHERE %(c)s::text IS NULL OR i.class_code = %(c)s OR i.class_code LIKE %(c)s || '.%%'"
        " ORDER BY i.code", {"c": class_code})
    return await cur.fetchall()


async def classes(conn: AsyncConnection) -> list[dict]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT code, name, parent FROM indicator_classes ORDER BY code")
    return await cur.fetchall()


async def series(conn: AsyncConnection, code: str, since: datetime, until: datetime,
                 dimension: str = "") -> dict:
    """Values of one dimension with 环比 and 同比 changes, and the failed periods' errors."""
    ind = await get(conn, code)
    freq = ind["frequency"]
    cur = await conn.execute(
        "SELECT period_start, value, light FROM indicator_values WHERE indicator_code = %s"
        " AND dimension = %s AND period_start >= %s AND period_start < %s ORDER BY 1",
        (code, dimension, shift(freq, since, COUNTY_TZ, -YEAR[freq]), until))
    known = {row[0]: (row[1], row[2]) for row in await cur.fetchall()}
    points = []
    for start in sorted(p for p in known if p >= since):
        value, colour = known[start]
        before = known.get(shift(freq, start, COUNTY_TZ, -1))
        year_ago = known.get(shift(freq, start, COUNTY_TZ, -YEAR[freq]))
        points.append({"period_start": start, "value": value, "light": colour,
                       "mom": _change(value, before), "yoy": _change(value, year_ago)})
    cur = await conn.execute(
        "SELECT period_start, error FROM indicator_runs WHERE indicator_code = %s"
        " AND status = 'failed' AND period_start >= %s AND period_start < %s ORDER BY 1",
        (code, since, until))
    failed = [{"period_start": p, "error": e} for p, e in await cur.fetchall()]
    return {"indicator": ind, "dimension": dimension, "points": points, "failed": failed,
            "trend": _trend([p["value"] for p in points[-6:]])}


def _change(value: float, before: tuple | None) -> float | None:
    if before is None or not before[0]:
        return None
    return round(100.0 * (value / before[0] - 1), 2)


def _trend(values: list[float]) -> str | None:
    """The sign of the least-squares slope over the last periods, relative to their mean."""
    n = len(values)
    if n < 3:
        return None
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    slope = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values)) / sum(
        (i - mean_x) ** 2 for i in range(n))
    scale = abs(mean_y) or 1.0
    if slope * n / scale > 0.05:
        return "rising"
    if slope * n / scale < -0.05:
        return "falling"
    return "flat"


async def breakdown(conn: AsyncConnection, code: str, period_start: datetime) -> list[dict]:
    """Drill-down: every dimension's value in one period."""
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT dimension, value, light FROM indicator_values WHERE indicator_code = %s"
        " AND period_start = %s AND dimension <> '' ORDER BY value DESC", (code, period_start))
    return await cur.fetchall()
