"""The dashboards' figures: windows in the county's time zone and shares from the counts."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from psycopg import AsyncConnection

from cityevents.calendar import COUNTY_TZ
from datafoundation.dashboards import queries as q

LATE_NOTE = "readings stamped more than 5 minutes before the ingest worker committed them"


def county_day(now: datetime, day: date | None = None) -> tuple[date, datetime, datetime]:
    """A county day (default: yesterday in Asia/Shanghai) as [start, end) instants."""
    day = day or (now.astimezone(COUNTY_TZ).date() - timedelta(days=1))
    start = datetime.combine(day, time(0), COUNTY_TZ)
    return day, start, start + timedelta(days=1)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _structured(row: dict) -> dict:
    return {**row, "structured_rows": row["readings"] + row["events"] + row["enterprise_rows"]}


def _quality_row(row: dict) -> dict:
    total = row["readings"]
    return {**row, "accepted_share": _share(row["good"], total),
            "out_of_range_share": _share(row["out_of_range"], total),
            "bad_share": _share(row["bad"], total)}


async def ingestion(conn: AsyncConnection, now: datetime, day: date | None) -> dict:
    day, y0, y1 = county_day(now, day)
    per_dept, messages = await q.quality(conn, y0, y1)
    zero = {"readings": 0, "good": 0, "uncertain": 0, "bad": 0, "out_of_range": 0}
    overall = next((r for r in per_dept if r["overall"]), zero)
    overall = {k: v for k, v in overall.items() if k not in ("overall", "department_id")}
    depts = [{k: v for k, v in r.items() if k != "overall"} for r in per_dept if not r["overall"]]
    seen = messages["accepted_messages"] + messages["dead_letters"]
    quality = {
        **_quality_row(overall), **messages,
        "dead_letter_share": _share(messages["dead_letters"], seen),
        "late_share": _share(messages["late"], messages["arrived_readings"]),
        "late_note": LATE_NOTE,
        "departments": [_quality_row(r) for r in depts],
    }
    return {
        "as_of": now, "day": day,
        "totals": _structured(await q.volumes(conn, None, None)),
        "yesterday": _structured(await q.volumes(conn, y0, y1)),
        "departments": await q.departments(conn, y0, y1),
        "quality": quality,
    }


async def services(conn: AsyncConnection, now: datetime, top: int) -> dict:
    return {"as_of": now, **await q.services(conn, now, top)}
