"""用电看经济 and 亩均 scores, per firm.

Power: over Jan..month of the year against the same months of the year before, a firm's
electricity growth (from its platform meter where mapped, datafoundation/economy/queries.py)
against its value-added growth; the absolute gap in percentage points takes the colour of the
highest economy_power_colours threshold it reaches. A firm without last year's figures has no
colour (its growth is undefined), and says so.

亩均: a year's per-mu value of each weighted measure against that year's base; the score is
sum(weight * per_mu / base) * 100 (100 = at the base on every measure)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import NotFound
from datafoundation.economy import queries as q


def _growth(now: float, before: float) -> float | None:
    return None if before == 0 else (now - before) / abs(before)


async def power_warnings(conn: AsyncConnection, month: date) -> list[dict]:
    cur = await conn.execute("SELECT colour, min_gap_pp::float8 FROM economy_power_colours"
                             " ORDER BY min_gap_pp DESC")
    colours = await cur.fetchall()
    end = date(month.year, month.month, 1)
    now = await q.per_firm(conn, date(end.year, 1, 1), end)
    before = {f["code"]: f for f in await q.per_firm(
        conn, date(end.year - 1, 1, 1), date(end.year - 1, end.month, 1))}
    out = []
    for firm in now:
        last = before.get(firm["code"])
        kwh = _growth(firm["electricity_kwh"], last["electricity_kwh"]) if last else None
        va = _growth(firm["value_added"], last["value_added"]) if last else None
        gap = None if kwh is None or va is None else abs(kwh - va) * 100
        colour = next((c for c, m in colours if gap is not None and gap >= m), None)
        out.append({"code": firm["code"], "name": firm["name"], "town": firm["town"],
                    "industry": firm["industry"],
                    "electricity_growth": None if kwh is None else round(kwh, 4),
                    "value_added_growth": None if va is None else round(va, 4),
                    "gap_pp": None if gap is None else round(gap, 2), "colour": colour,
                    "metered_months": firm["metered_months"],
                    "note": "" if last else "no figures for the year before"})
    return sorted(out, key=lambda r: -(r["gap_pp"] or -1))


async def mu_scores(conn: AsyncConnection, year: int) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT measure, weight::float8 AS weight, base::float8 AS base"
                          " FROM economy_mu_weights WHERE year = %s ORDER BY measure", (year,))
        weights = await cur.fetchall()
        if not weights:
            raise NotFound(f"no 亩均 weights for {year}")
        await cur.execute("SELECT enterprise_code, mu::float8 AS mu FROM economy_land"
                          " WHERE year = %s", (year,))
        land = {r["enterprise_code"]: r["mu"] for r in await cur.fetchall()}
    firms = await q.per_firm(conn, date(year, 1, 1), date(year, 12, 1))
    out = []
    for firm in firms:
        mu = land.get(firm["code"])
        if mu is None:
            continue  # no land recorded: not scored (listed by land, not by absence)
        per_mu = {w["measure"]: round(firm[w["measure"]] / mu, 4) for w in weights}
        score = sum(w["weight"] * per_mu[w["measure"]] / w["base"] for w in weights) * 100
        out.append({"code": firm["code"], "name": firm["name"], "town": firm["town"],
                    "industry": firm["industry"], "mu": mu, "per_mu": per_mu,
                    "score": round(score, 2)})
    return sorted(out, key=lambda r: -r["score"])


def colours_by(warnings: list[dict], by: str) -> list[dict]:
    """Firms per colour in each town (乡镇园区: parks are towns in the statistics files) or
    industry; `none` counts the firms without a colour."""
    groups: dict[str, dict] = defaultdict(lambda: dict.fromkeys(
        ("green", "blue", "orange", "red", "none"), 0))
    for w in warnings:
        groups[w[by]][w["colour"] or "none"] += 1
    return [{"group": k, **v} for k, v in sorted(groups.items())]


def mu_by(scores: list[dict], by: str) -> list[dict]:
    """Per town or industry: firms, land, mean score, and each measure per mu over the group
    (sum of the measure / sum of the land, not the mean of the firms' ratios)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for s in scores:
        groups[s[by]].append(s)
    out = []
    for key, firms in sorted(groups.items()):
        mu = sum(f["mu"] for f in firms)
        out.append({"group": key, "firms": len(firms), "mu": round(mu, 2),
                    "mean_score": round(sum(f["score"] for f in firms) / len(firms), 2),
                    "per_mu": {m: round(sum(f["per_mu"][m] * f["mu"] for f in firms) / mu, 4)
                               for m in firms[0]["per_mu"]}})
    return out
