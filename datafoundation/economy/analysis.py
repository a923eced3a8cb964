"""The industrial-economy panel: totals, structure, distribution, top and loss-making firms,
and year-on-year growth on the same set of firms (同口径: the firms reporting in both periods,
so that firms entering or leaving the 规上 list do not pass for growth).

Periods are cumulative from January (累计, as the statistics bureau reports): Jan..M of the
year against Jan..M of the year before.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from psycopg import AsyncConnection

from cityops.errors import NotFound
from datafoundation.economy import queries as q

MEASURES = ("revenue", "value_added", "profit", "tax", "electricity_kwh")


def _sum(firms: list[dict]) -> dict:
    return {m: round(sum(f[m] for f in firms), 2) for m in MEASURES}


def _growth(now: float, before: float) -> float | None:
    return None if before == 0 else round((now - before) / abs(before), 4)


def _groups(firms: list[dict], key: str, total_revenue: float) -> list[dict]:
    by: dict[str, list[dict]] = defaultdict(list)
    for firm in firms:
        by[firm[key]].append(firm)
    rows = [{key: name, "firms": len(group), **_sum(group),
             "revenue_share": round(sum(f["revenue"] for f in group) / total_revenue, 4)
             if total_revenue else None}
            for name, group in by.items()]
    return sorted(rows, key=lambda r: -r["revenue"])


def _brief(firm: dict) -> dict:
    return {k: firm[k] for k in ("code", "name", "industry", "town", *MEASURES)}


async def overview(conn: AsyncConnection, month: date | None, top: int) -> dict:
    month = month or await q.latest_month(conn)
    if month is None:
        raise NotFound("no enterprise indicators imported yet")
    month = date(month.year, month.month, 1)
    current = await q.per_firm(conn, date(month.year, 1, 1), month)
    before_month = date(month.year - 1, month.month, 1)
    previous = {f["code"]: f for f in await q.per_firm(conn, date(month.year - 1, 1, 1),
                                                         before_month)}
    same = [f for f in current if f["code"] in previous]
    totals, same_now = _sum(current), _sum(same)
    same_before = _sum([previous[f["code"]] for f in same])
    losses = [f for f in current if f["profit"] < 0]
    return {
        "period": {"start": date(month.year, 1, 1), "end": month},
        "firms": len(current),
        "totals": totals,
        "yoy": {"firms_compared": len(same),
                **{m: _growth(same_now[m], same_before[m]) for m in MEASURES}},
        "by_industry": _groups(current, "industry", totals["revenue"]),
        "by_size": _groups(current, "size", totals["revenue"]),
        "by_ownership": _groups(current, "ownership", totals["revenue"]),
        "by_town": _groups(current, "town", totals["revenue"]),
        "top_by_revenue": [_brief(f) for f in sorted(current, key=lambda f: -f["revenue"])[:top]],
        "top_by_profit": [_brief(f) for f in sorted(current, key=lambda f: -f["profit"])[:top]],
        "loss_making": {"firms": len(losses),
                        "total_loss": round(sum(f["profit"] for f in losses), 2),
                        "list": [_brief(f) for f in sorted(losses, key=lambda f: f["profit"])]},
        "metered_firms": sum(1 for f in current if f["metered_months"]),
    }
