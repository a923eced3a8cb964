"""Scores of the framework's items per month and place, each place against its own past.

An events item: rate = events closed on time / events reported (not cancelled) in the month;
volume = 100 * min(1, (baseline + 1) / (count + 1)) with baseline the place's mean monthly
count over the framework's history_periods months before (+1 so that one event where none came
before is not a zero); score = 100 * rate_weight * rate + (1 - rate_weight) * volume, or the
volume alone in a month with no event. A manual item: the mean of the field and survey scores
entered. The total is the weighted mean of the items that have a score (coverage says how much
of the weight that is)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from itertools import pairwise

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.evaluation.framework import load, month_start
from cityevents.evaluation.rates import AREA_KEYS
from cityops.errors import InvalidInput

_COUNTS = """
SELECT {key} AS area, ic.item_code AS item,
    date_trunc('month', e.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS period,
    count(*) AS events,
    count(*) FILTER (WHERE e.state = 'closed' AND e.closed_on_time) AS closed_on_time
FROM events e JOIN evaluation_item_categories ic
    ON ic.category_code = e.category_code AND ic.framework_code = %(fw)s
WHERE e.state <> 'cancelled'
    AND e.reported_at >= (%(start)s::timestamp AT TIME ZONE 'Asia/Shanghai')
    AND e.reported_at < (%(end)s::timestamp AT TIME ZONE 'Asia/Shanghai') {area}
GROUP BY 1, 2, 3
"""


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


async def _counts(conn: AsyncConnection, fw: str, by: str, area: str | None,
                  start: date, end: date) -> dict:
    key = AREA_KEYS.get(by, "''")
    where = f"AND {key} = %(area)s" if area is not None else ""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_COUNTS.format(key=key, area=where),
                          {"fw": fw, "start": start, "end": end, "area": area})
        return {(r["area"], r["item"], r["period"]): r for r in await cur.fetchall()}


async def _manual(conn: AsyncConnection, fw: str, area: str | None, start: date,
                  end: date) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT area, item_code AS item, period, kind, score::float8 AS score, entered_by"
            " FROM evaluation_manual_scores WHERE framework_code = %s AND period >= %s"
            " AND period < %s AND (%s::text IS NULL OR area = %s)",
            (fw, start, end, area, area))
        out: dict = defaultdict(list)
        for r in await cur.fetchall():
            out[(r["area"], r["item"], r["period"])].append(r)
        return out


def _event_item(item: dict, counts: dict, place: str, month: date, history: int) -> dict:
    row = counts.get((place, item["code"], month))
    n = row["events"] if row else 0
    past = [counts.get((place, item["code"], add_months(month, -k))) for k in
            range(1, history + 1)]
    baseline = sum(r["events"] for r in past if r) / history
    volume = 100 * min(1.0, (baseline + 1) / (n + 1))
    rate = row["closed_on_time"] / n if n else None
    score = volume if rate is None else (
        100 * item["rate_weight"] * rate + (1 - item["rate_weight"]) * volume)
    return {"events": n, "closed_on_time": row["closed_on_time"] if row else 0,
            "on_time_rate": None if rate is None else round(rate, 4),
            "baseline": round(baseline, 3), "volume_score": round(volume, 2),
            "score": round(score, 2)}


def _manual_item(entries: list[dict]) -> dict:
    scores = {e["kind"]: e["score"] for e in entries}
    return {"field": scores.get("field"), "survey": scores.get("survey"),
            "entered_by": sorted({e["entered_by"] for e in entries}),
            "score": round(sum(scores.values()) / len(scores), 2) if scores else None}


def _period(fw: dict, counts: dict, manual: dict, place: str, month: date) -> dict:
    items = []
    for item in fw["items"]:
        got = (_event_item(item, counts, place, month, fw["history_periods"])
               if item["source"] == "events" else
               _manual_item(manual.get((place, item["code"], month), [])))
        items.append({"code": item["code"], "level1": item["level1"], "name": item["name"],
                      "weight": item["weight"], "source": item["source"], **got})
    scored = [i for i in items if i["score"] is not None]
    weight = sum(i["weight"] for i in scored)
    total_weight = sum(i["weight"] for i in items)
    total = sum(i["weight"] * i["score"] for i in scored) / weight if weight else None
    return {"period": month, "total": None if total is None else round(total, 2),
            "coverage": round(weight / total_weight, 4) if total_weight else 0.0,
            "items": items}


async def place(conn: AsyncConnection, framework: str, by: str, area: str, period: date,
                periods: int) -> dict:
    """One place (the county: by 'county', area '') over `periods` months ending at
    `period`, each month with its change from the month before: 纵向对比, no other place."""
    fw = await load(conn, framework)
    last = month_start(period)
    first = add_months(last, -(periods - 1))
    start = add_months(first, -fw["history_periods"])
    counts = await _counts(conn, framework, by, area if by != "county" else None, start,
                           add_months(last, 1))
    manual = await _manual(conn, framework, area, first, add_months(last, 1))
    months = [_period(fw, counts, manual, area, add_months(first, k)) for k in range(periods)]
    for before, now in pairwise(months):
        now["change"] = (None if now["total"] is None or before["total"] is None
                         else round(now["total"] - before["total"], 2))
    months[0]["change"] = None
    return {"framework": framework, "by": by, "area": area, "periods": months}


async def places(conn: AsyncConnection, framework: str, by: str, period: date,
                 rank: bool) -> list[dict]:
    """Every town or grid's total this month beside its own previous month, in code order;
    ordered by score only when asked and the framework's method allows ranking."""
    fw = await load(conn, framework)
    if rank and not fw["ranking_allowed"]:
        raise InvalidInput(f"framework {framework!r} does not rank places: its method compares"
                           " each place with its own past (重在纵向对比)")
    last = month_start(period)
    start = add_months(last, -1 - fw["history_periods"])
    counts = await _counts(conn, framework, by, None, start, add_months(last, 1))
    manual = await _manual(conn, framework, None, add_months(last, -1), add_months(last, 1))
    cur = await conn.execute("SELECT code FROM areas WHERE kind = %s", (by,))
    codes = {r[0] for r in await cur.fetchall()} | {k[0] for k in counts if k[0]}
    out = []
    for code in sorted(codes):
        now = _period(fw, counts, manual, code, last)
        before = _period(fw, counts, manual, code, add_months(last, -1))
        change = (None if now["total"] is None or before["total"] is None
                  else round(now["total"] - before["total"], 2))
        out.append({"area": code, "period": last, "total": now["total"],
                    "previous_total": before["total"], "change": change})
    if rank:
        out.sort(key=lambda r: -(r["total"] or 0))
    return out
