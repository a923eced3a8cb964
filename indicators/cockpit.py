"""The leader's cockpit (领导驾驶舱): each class of indicators and its state, what changed since
the previous period, and what needs a decision — red indicators, red-light events (past
their time limit, still open), categories whose forecast volume jumps — each with the link to
its evidence."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.analysis import forecast
from cityops.errors import InvalidInput
from indicators import store

SPIKE = 1.3  # next week's forecast this much above the last four weeks' mean is a spike

_LAST_TWO = """
SELECT indicator_code, period_start, value, light FROM (
    SELECT indicator_code, period_start, value, light,
           row_number() OVER (PARTITION BY indicator_code ORDER BY period_start DESC) AS n
    FROM indicator_values WHERE dimension = '' AND period_start > %s
) v WHERE n <= 2
"""


def _classes(rows: list[dict], names: dict[str, str]) -> list[dict]:
    out: dict[str, dict] = {}
    for r in rows:
        top = r["class_code"].split(".")[0]
        entry = out.setdefault(top, {"code": top, "name": names.get(top, top), "excellent": 0,
                                     "green": 0, "yellow": 0, "red": 0, "none": 0,
                                     "failed": 0, "indicators": 0})
        entry["indicators"] += 1
        entry[r["light"] or "none"] += 1
        entry["failed"] += r["last_status"] == "failed"
    for entry in out.values():
        worst = next((c for c in ("red", "yellow") if entry[c]), "green")
        entry["state"] = worst if entry["indicators"] > entry["none"] else "none"
    return sorted(out.values(), key=lambda e: e["code"])


async def _changes(conn: AsyncConnection, rows: list[dict], now: datetime) -> list[dict]:
    cur = await conn.execute(_LAST_TWO, (now - timedelta(days=400),))
    series: dict[str, list] = {}
    for code, start, value, colour in await cur.fetchall():
        series.setdefault(code, []).append((start, value, colour))
    by_code = {r["code"]: r for r in rows}
    changes = []
    for code, points in series.items():
        if len(points) < 2 or code not in by_code:
            continue
        (_, now_v, now_l), (_, was_v, was_l) = sorted(points, reverse=True)[:2]
        pct = None if not was_v else round(100.0 * (now_v / was_v - 1), 1)
        if now_l != was_l or (pct is not None and abs(pct) >= 10):
            changes.append({"code": code, "name": by_code[code]["name"], "value": now_v,
                            "previous": was_v, "change_pct": pct, "light": now_l,
                            "previous_light": was_l, "unit": by_code[code]["unit"]})
    worse = {"red": 0, "yellow": 1, "none": 2, "green": 3, "excellent": 4}
    return sorted(changes, key=lambda c: (worse[c["light"]], -abs(c["change_pct"] or 0)))


async def _red_events(conn: AsyncConnection, now: datetime) -> list[dict]:
    cur = await conn.cursor(row_factory=dict_row).execute(
        "SELECT e.id, e.category_code, c.minor AS category_name, e.description, e.state,"
        " e.department_id, e.total_deadline_at, e.supervised FROM events e"
        " JOIN event_categories c ON c.code = e.category_code"
        " WHERE e.state NOT IN ('closed', 'cancelled', 'suspended')"
        " AND e.total_deadline_at < %s ORDER BY e.total_deadline_at LIMIT 20", (now,))
    return await cur.fetchall()


async def _spikes(conn: AsyncConnection, now: datetime, top: int = 3) -> list[dict]:
    cur = await conn.execute(
        "SELECT category_code FROM events WHERE reported_at >= %s AND merged_into IS NULL"
        " GROUP BY 1 ORDER BY count(*) DESC LIMIT %s", (now - timedelta(weeks=8), top))
    spikes = []
    for (category,) in await cur.fetchall():
        try:
            made = await forecast.forecast(conn, category, now, history_weeks=104)
        except InvalidInput:
            continue  # too short a series: nothing to say, and nothing drawn
        recent = [h["count"] for h in made["history"][-4:]]
        base = sum(recent) / len(recent) if recent else 0
        nxt = made["forecast"][0]
        if base and nxt["mean"] > SPIKE * base:
            spikes.append({"category": category, "week": nxt["week"], "mean": nxt["mean"],
                           "upper": nxt["upper"], "recent_mean": round(base, 2)})
    return spikes


async def cockpit(conn: AsyncConnection, now: datetime) -> dict:
    rows = await store.listing(conn)
    names = {c["code"]: c["name"] for c in await store.classes(conn)}
    return {
        "classes": _classes(rows, names),
        "changes": await _changes(conn, rows, now),
        "red_indicators": [r for r in rows if r["light"] == "red"],
        "failed_indicators": [r for r in rows if r["last_status"] == "failed"],
        "red_events": await _red_events(conn, now),
        "forecast_spikes": await _spikes(conn, now),
    }
