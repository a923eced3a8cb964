"""Generating a report into the archive, and reading it back."""

from __future__ import annotations

import asyncio
from datetime import date

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput, NotFound
from indicators.reports import collect

FORMATS = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


async def generate(conn: AsyncConnection, kind: str, start: date, who: str,
                   font_file: str | None = None) -> dict:
    # the typesetting libraries (reportlab, python-docx, openpyxl) load at the first report,
    # not with every API process
    from indicators.reports import docx, pdf, xlsx

    report = await collect.collect(conn, kind, start)
    # typesetting is CPU work: off the event loop, so an API process keeps answering
    files = await asyncio.to_thread(lambda: (pdf.render(report, font_file),
                                             docx.render(report), xlsx.render(report)))
    cur = await conn.cursor(row_factory=dict_row).execute(
        "INSERT INTO reports (kind, period_start, period_end, title, pdf, docx, xlsx,"
        " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (kind, period_start)"
        " DO UPDATE SET pdf = excluded.pdf, docx = excluded.docx, xlsx = excluded.xlsx,"
        " title = excluded.title, generated_at = now()"
        " RETURNING id, kind, period_start, period_end, title, created_by, created_at,"
        " generated_at, length(pdf) AS pdf_bytes",
        (kind, report.start, report.end, report.title, *files, who))
    return await cur.fetchone()


async def listing(conn: AsyncConnection, limit: int = 100) -> list[dict]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT id, kind, period_start, period_end, title, created_by, created_at,"
        " generated_at, length(pdf) AS pdf_bytes FROM reports"
        " ORDER BY period_start DESC, kind LIMIT %s", (limit,))
    return await cur.fetchall()


async def file(conn: AsyncConnection, report_id: int, fmt: str) -> tuple[str, bytes]:
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    cur = await conn.execute(
        f"SELECT title, {fmt} FROM reports WHERE id = %s", (report_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"report {report_id} does not exist")
    return row[0], bytes(row[1])


async def generate_due(conn: AsyncConnection, now, font_file: str | None = None) -> list[dict]:
    """The last complete month's and week's reports, where not yet in the archive."""
    from cityevents.calendar import COUNTY_TZ
    from indicators.model import last_complete

    made = []
    for kind in ("monthly", "weekly"):
        start = last_complete(kind, now, COUNTY_TZ).astimezone(COUNTY_TZ)
        cur = await conn.execute("SELECT 1 FROM reports WHERE kind = %s AND period_start = %s",
                                 (kind, start))
        if await cur.fetchone() is None:
            made.append(await generate(conn, kind, start.date(), "scheduler", font_file))
    return made
