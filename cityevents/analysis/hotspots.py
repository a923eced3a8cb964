"""Hot spots: places where a category of event is more frequent now than the place's own past.

Each (area, category) pair's count in the current period is tested against a Poisson rate
estimated from the same pair's previous periods ("重在纵向对比": a place against itself, not
against other places). Many pairs are tested at once, so the p-values are adjusted with
Benjamini-Hochberg: of the pairs flagged, at most `alpha` are expected to be chance. A pair
with no history borrows the category's mean rate per area, so a first-ever cluster can still
stand out, but a single event never does (`min_count`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from cityops.errors import InvalidInput

AREA_COLUMNS = {"grid": "grid", "community": "community_code", "town": "town_code"}


@dataclass(frozen=True)
class PairCount:
    area: str
    category: str
    current: int
    history: int  # events over all history periods together


@dataclass(frozen=True)
class Hotspot:
    area: str
    category: str
    current: int
    expected: float
    p_value: float
    q_value: float


def _rates(pairs: list[PairCount], periods: int) -> dict[str, float]:
    """The category's mean count per area and period over the history, the floor of a rate."""
    totals: dict[str, list[int]] = {}
    for p in pairs:
        totals.setdefault(p.category, []).append(p.history)
    return {c: sum(h) / (len(h) * periods) for c, h in totals.items()}


def significant(pairs: list[PairCount], periods: int, alpha: float = 0.05,
                min_count: int = 3) -> list[Hotspot]:
    """The pairs whose current count is significantly above their own history, BH-adjusted."""
    if periods < 1:
        raise InvalidInput("history_periods must be at least 1")
    from scipy.stats import poisson  # scipy loads at the first analysis, not with the API

    floors = _rates(pairs, periods)
    tested = []
    for p in pairs:
        expected = max(p.history / periods, floors[p.category], 0.05)
        # P(X >= current) under the pair's own rate
        tested.append((p, expected, float(poisson.sf(p.current - 1, expected))))
    ranked = sorted(tested, key=lambda t: t[2])
    m = len(ranked)
    q_values, running = [0.0] * m, 1.0
    for i in range(m - 1, -1, -1):  # step-up: q_i = min over j >= i of p_j * m / j
        running = min(running, ranked[i][2] * m / (i + 1))
        q_values[i] = running
    return [
        Hotspot(p.area, p.category, p.current, round(expected, 3), pv, q)
        for (p, expected, pv), q in zip(ranked, q_values, strict=True)
        if q <= alpha and p.current >= min_count and p.current > expected
    ]


async def pair_counts(conn: AsyncConnection, by: str, until: datetime, period: timedelta,
                      periods: int, category: str | None) -> list[PairCount]:
    """Counts per area and category: the current period and the `periods` before it."""
    if by not in AREA_COLUMNS:
        raise InvalidInput(f"by must be one of {', '.join(AREA_COLUMNS)}, not {by!r}")
    start = until - period * (periods + 1)
    query = sql.SQL(
        "SELECT {col} AS area, category_code AS category,"
        " count(*) FILTER (WHERE reported_at >= %(cut)s)::int AS current,"
        " count(*) FILTER (WHERE reported_at < %(cut)s)::int AS history"
        " FROM events WHERE reported_at >= %(start)s AND reported_at < %(until)s"
        " AND coalesce({col}, '') <> '' AND merged_into IS NULL"
        " AND (%(category)s::text IS NULL OR category_code = %(category)s)"
        " GROUP BY 1, 2"
    ).format(col=sql.Identifier(AREA_COLUMNS[by]))
    cur = await conn.cursor(row_factory=dict_row).execute(
        query, {"cut": until - period, "start": start, "until": until, "category": category})
    return [PairCount(**row) for row in await cur.fetchall()]


async def find(conn: AsyncConnection, *, by: str = "grid", until: datetime,
               period_days: int = 7, periods: int = 8, category: str | None = None,
               alpha: float = 0.05, min_count: int = 3) -> list[dict]:
    if not 1 <= period_days <= 92:
        raise InvalidInput("period_days must be between 1 and 92")
    pairs = await pair_counts(conn, by, until, timedelta(days=period_days), periods, category)
    spots = significant(pairs, periods, alpha, min_count)
    names = await _area_names(conn, by, [s.area for s in spots])
    return [{**s.__dict__, "area_name": names.get(s.area), "by": by} for s in spots]


async def _area_names(conn: AsyncConnection, kind: str, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    cur = await conn.execute("SELECT code, name FROM areas WHERE kind = %s AND code = ANY(%s)",
                             (kind, codes))
    return dict(await cur.fetchall())
