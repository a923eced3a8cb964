"""GB/T 30428.4 rates per town or grid: the counts of cityevents/queries.py's per-department
evaluation (same pairs, same definitions), grouped by the event's place instead."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.queries import EVALUATION_TEMPLATE

# the event's town (from its point, migration 081) or grid cell; '' where it has none
AREA_KEYS = {"town": "coalesce(e.town_code, '')", "grid": "e.grid"}


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


async def by_area(conn: AsyncConnection, by: str, start: datetime, end: datetime) -> list[dict]:
    """Counts and rates per place of events first dispatched in [start, end)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(EVALUATION_TEMPLATE.format(key=AREA_KEYS[by], name="area"),
                          {"start": start, "end": end})
        rows = await cur.fetchall()
    for row in rows:
        due = row["due"]
        row.update(
            closure_rate=_rate(row["closed"], due),
            on_time_closure_rate=_rate(row["closed_on_time"], due),
            disposal_rate=_rate(row["disposed"], due),
            on_time_disposal_rate=_rate(row["disposed_on_time"], due),
            rework_rate=_rate(row["reworked"], due),
            accurate_dispatch_rate=_rate(row["accurate_dispatches"], row["dispatched"]))
    return rows
