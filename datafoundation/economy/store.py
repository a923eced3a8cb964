"""Loading checked indicator rows: all or nothing, a file with any bad row loads no row."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import AsyncConnection

from cityops.errors import InvalidInput, NotFound
from datafoundation.economy.parse import parse


@dataclass
class ImportResult:
    batch_id: int | None
    rows_total: int
    rows_loaded: int
    enterprises: int
    report: list[dict]
    encoding: str = ""


async def import_file(
    conn: AsyncConnection, filename: str, data: bytes, imported_by: str, dry_run: bool = False
) -> ImportResult:
    parsed = parse(filename, data)
    total = len(parsed.rows) + len(parsed.report)
    if parsed.report:
        first = parsed.report[0]
        # the per-row report goes to the client as `rows`, like the device CSV import's
        raise InvalidInput(
            f"{len(parsed.report)} of {total} rows are invalid, nothing was imported; first:"
            f" row {first['row']}: {'; '.join(first['errors'])} ({parsed.encoding} read)",
            rows=parsed.report,
        )
    firms = {r["code"]: r for r in parsed.rows}
    if dry_run:
        return ImportResult(None, total, 0, len(firms), [], parsed.encoding)
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO import_batches (filename, rows_total, rows_loaded, imported_by,"
            " encoding) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (filename[:255], total, total, imported_by, parsed.encoding),
        )
        batch = (await cur.fetchone())[0]
        async with conn.cursor() as c:
            await c.executemany(
                "INSERT INTO enterprises (code, name, industry, town, size, ownership)"
                " VALUES (%(code)s, %(name)s, %(industry)s, %(town)s, %(size)s, %(ownership)s)"
                " ON CONFLICT (code) DO UPDATE SET name = excluded.name,"
                " industry = excluded.industry, town = excluded.town, size = excluded.size,"
                " ownership = excluded.ownership, updated_at = now()",
                list(firms.values()),
            )
            await c.executemany(
                "INSERT INTO enterprise_indicators (enterprise_code, month, revenue, value_added,"
                " profit, tax, electricity_kwh, batch_id) VALUES (%(code)s, %(month)s,"
                " %(revenue)s, %(value_added)s, %(profit)s, %(tax)s, %(electricity_kwh)s,"
                f" {batch}) ON CONFLICT (enterprise_code, month) DO UPDATE SET"
                " revenue = excluded.revenue, value_added = excluded.value_added,"
                " profit = excluded.profit, tax = excluded.tax,"
                " electricity_kwh = excluded.electricity_kwh, batch_id = excluded.batch_id,"
                " imported_at = now()",
                parsed.rows,
            )
    return ImportResult(batch, total, total, len(firms), [], parsed.encoding)


async def map_meter(conn: AsyncConnection, code: str, device: str, point: str) -> None:
    """Take an enterprise's monthly electricity from a platform power meter's kWh counter."""
    cur = await conn.execute("SELECT 1 FROM enterprises WHERE code = %s", (code,))
    if await cur.fetchone() is None:
        raise NotFound(f"enterprise {code} is not imported")
    cur = await conn.execute("SELECT 1 FROM points WHERE device_id = %s AND name = %s",
                             (device, point))
    if await cur.fetchone() is None:
        raise InvalidInput(f"device {device!r} has no point {point!r}")
    await conn.execute(
        "INSERT INTO enterprise_meters (enterprise_code, device_id, point) VALUES (%s, %s, %s)"
        " ON CONFLICT (enterprise_code) DO UPDATE SET device_id = excluded.device_id,"
        " point = excluded.point, updated_at = now()", (code, device, point),
    )
