"""The industrial economy's monthly series and the 规上 set per year.

Series: January and February are published together (Spring Festival), so a year's periods
are "01-02", "03" ... "12"; each has its month value and the cumulative value from January.
同口径 growth: last year's figure recomputed on this year's set of firms (the year's 规上 set
when one is recorded, else the firms reporting this year); a firm with no figure last year
counts zero there, so firms entering the set are growth, not noise from the published totals.
"""

from __future__ import annotations

from collections import defaultdict

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput, NotFound

MEASURES = ("revenue", "value_added", "profit", "tax", "electricity_kwh")

_MONTHLY = """
SELECT i.enterprise_code AS code, extract(month FROM i.month)::int AS month,
    i.{measure}::float8 AS value
FROM enterprise_indicators i WHERE extract(year FROM i.month) = %(year)s
"""


def period_name(month: int) -> str:
    return "01-02" if month <= 2 else f"{month:02d}"


async def scale_set(conn: AsyncConnection, year: int) -> set[str] | None:
    cur = await conn.execute(
        "SELECT enterprise_code FROM economy_scale_firms WHERE year = %s", (year,))
    codes = {r[0] for r in await cur.fetchall()}
    return codes or None


async def _monthly(conn: AsyncConnection, measure: str, year: int) -> dict[str, dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_MONTHLY.format(measure=measure), {"year": year})
        out: dict[str, dict] = defaultdict(lambda: defaultdict(float))
        for r in await cur.fetchall():
            out[r["code"]][period_name(r["month"])] += r["value"]
        return out


def _growth(now: float, before: float) -> float | None:
    return None if before == 0 else round((now - before) / abs(before), 4)


async def series(conn: AsyncConnection, measure: str, year: int) -> dict:
    if measure not in MEASURES:
        raise InvalidInput(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
    now, before = await _monthly(conn, measure, year), await _monthly(conn, measure, year - 1)
    firms = await scale_set(conn, year)
    basis = "scale_set" if firms is not None else "reporting"
    firms = firms if firms is not None else set(now)
    if not firms:
        raise NotFound(f"no enterprise indicators for {year}")
    periods = sorted({p for code in firms for p in now.get(code, {})})
    rows, cum_now, cum_before = [], 0.0, 0.0
    for p in periods:
        month_now = sum(now.get(c, {}).get(p, 0.0) for c in firms)
        month_before = sum(before.get(c, {}).get(p, 0.0) for c in firms)
        cum_now, cum_before = cum_now + month_now, cum_before + month_before
        rows.append({"period": p, "month": round(month_now, 2),
                     "cumulative": round(cum_now, 2),
                     "same_basis_last_year": round(cum_before, 2),
                     "month_growth": _growth(month_now, month_before),
                     "cumulative_growth": _growth(cum_now, cum_before)})
    return {"measure": measure, "year": year, "basis": basis, "firms": len(firms),
            "periods": rows}


async def derive_scale_set(conn: AsyncConnection, year: int) -> dict:
    """Record the year's 规上 set: the firms whose revenue over the year before reached the
    threshold in force for `year` (economy_scale_rules)."""
    cur = await conn.execute("SELECT revenue_min::float8 FROM economy_scale_rules"
                             " WHERE from_year <= %s ORDER BY from_year DESC LIMIT 1", (year,))
    rule = await cur.fetchone()
    if rule is None:
        raise NotFound(f"no 规上 threshold is in force in {year}")
    async with conn.transaction():
        await conn.execute("DELETE FROM economy_scale_firms WHERE year = %s", (year,))
        cur = await conn.execute(
            "INSERT INTO economy_scale_firms (year, enterprise_code)"
            " SELECT %(year)s, enterprise_code FROM enterprise_indicators"
            " WHERE extract(year FROM month) = %(year)s - 1 GROUP BY enterprise_code"
            " HAVING sum(revenue) >= %(min)s RETURNING enterprise_code",
            {"year": year, "min": rule[0]})
        codes = sorted(r[0] for r in await cur.fetchall())
    return {"year": year, "revenue_min": rule[0], "firms": codes}
