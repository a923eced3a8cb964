"""SQL reads of the industrial-economy indicators."""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection
from psycopg.rows import dict_row

# per enterprise, the sums over [start, end] months; a month's electricity comes from the
# enterprise's platform meter (the kWh counter's rise over the county month) when it has one
_PER_FIRM = """
WITH metered AS (
    SELECT i.enterprise_code, i.month,
        (SELECT max(r.value) - min(r.value) FROM readings r
         WHERE r.point_id = p.id AND r.quality < 2
           AND r.time >= (i.month::timestamp AT TIME ZONE 'Asia/Shanghai')
           AND r.time < ((i.month + interval '1 month')::timestamp AT TIME ZONE 'Asia/Shanghai')
        ) AS kwh
    FROM enterprise_meters m
    JOIN points p ON p.device_id = m.device_id AND p.name = m.point
    JOIN enterprise_indicators i ON i.enterprise_code = m.enterprise_code
    WHERE i.month BETWEEN %(start)s AND %(end)s
)
SELECT e.code, e.name, e.industry, e.town, e.size, e.ownership,
    sum(i.revenue)::float8 AS revenue, sum(i.value_added)::float8 AS value_added,
    sum(i.profit)::float8 AS profit, sum(i.tax)::float8 AS tax,
    sum(coalesce(m.kwh, i.electricity_kwh))::float8 AS electricity_kwh,
    count(m.kwh) AS metered_months, count(*) AS months
FROM enterprise_indicators i JOIN enterprises e ON e.code = i.enterprise_code
LEFT JOIN metered m ON m.enterprise_code = i.enterprise_code AND m.month = i.month
WHERE i.month BETWEEN %(start)s AND %(end)s
GROUP BY e.code ORDER BY e.code
"""


async def per_firm(conn: AsyncConnection, start: date, end: date) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_PER_FIRM, {"start": start, "end": end})
        return await cur.fetchall()


async def latest_month(conn: AsyncConnection) -> date | None:
    cur = await conn.execute("SELECT max(month) FROM enterprise_indicators")
    return (await cur.fetchone())[0]


async def batches(conn: AsyncConnection, limit: int) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM import_batches ORDER BY id DESC LIMIT %s", (limit,))
        return await cur.fetchall()
