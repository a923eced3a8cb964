"""Weekly event volume per category, forecast four weeks ahead with intervals.

Exponential smoothing state-space models (statsmodels ETSModel): none, a damped trend, and
seasonal cycles where the series holds at least two of them; the model with the lowest AICc
wins. Intervals come from the model (simulated where it has no closed form). Forecasts are
stored, so their error against the weeks that came is measured, beside the naive forecast
(next week = this week) that any model must beat to be worth showing.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection

from cityevents.calendar import COUNTY_TZ
from cityops.errors import InvalidInput

MIN_WEEKS = 8  # fewer and there is nothing to learn a level and its noise from
SEASONS = (4, 13, 52)  # a month, a quarter, a year of weeks


@dataclass(frozen=True)
class Forecast:
    model: str
    mean: list[float]
    lower: list[float]
    upper: list[float]
    level: float


class TooShort(InvalidInput):
    """A series too short to forecast: said, never drawn as a line."""


def _candidates(n: int) -> list[dict]:
    out = [{"trend": None}, {"trend": "add", "damped_trend": True}]
    out += [{"trend": None, "seasonal": "add", "seasonal_periods": s}
            for s in SEASONS if n >= 2 * s + 2]
    return out


def _name(spec: dict) -> str:
    parts = ["ets"]
    if spec.get("trend"):
        parts.append("damped")
    if spec.get("seasonal"):
        parts.append(f"season{spec['seasonal_periods']}")
    return "-".join(parts)


def fit(counts: list[float], horizon: int = 4, level: float = 0.8) -> Forecast:
    """The best model by AICc and its forecast; TooShort below MIN_WEEKS weeks."""
    # heavy (numpy, pandas, statsmodels): loaded at the first forecast, not with the API
    import numpy as np
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    if len(counts) < MIN_WEEKS:
        raise TooShort(f"{len(counts)} weeks of data: at least {MIN_WEEKS} are needed to"
                       " forecast")
    # a Series: ETSModel's prediction frame needs an index
    y = pd.Series(np.asarray(counts, dtype=float))
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on flat or tiny series
        for spec in _candidates(len(y)):
            try:
                result = ETSModel(y, error="add", **spec).fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if math.isfinite(result.aicc) and (best is None or result.aicc < best[1].aicc):
                best = (spec, result)
        if best is None:
            raise TooShort("no model could be fitted to this series")
        frame = best[1].get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(
            alpha=1 - level)
    clip = lambda col: [max(0.0, round(float(v), 2)) for v in frame[col]]  # noqa: E731
    return Forecast(_name(best[0]), clip("mean"), clip("pi_lower"), clip("pi_upper"), level)


def week_start(moment: datetime) -> date:
    day = moment.astimezone(COUNTY_TZ).date()
    return day - timedelta(days=day.weekday())


async def weekly_counts(conn: AsyncConnection, category: str, until: datetime,
                        weeks: int) -> tuple[list[date], list[float]]:
    """Counts per county week (Monday to Sunday) of the `weeks` complete weeks before until."""
    end = week_start(until)
    start = end - timedelta(weeks=weeks)
    cur = await conn.execute(
        "SELECT (date_trunc('week', reported_at AT TIME ZONE 'Asia/Shanghai'))::date AS w,"
        " count(*) FROM events WHERE category_code = %s AND merged_into IS NULL"
        " AND reported_at >= %s AND reported_at < %s GROUP BY 1",
        (category, _midnight(start), _midnight(end)))
    found = dict(await cur.fetchall())
    days = [start + timedelta(weeks=i) for i in range(weeks)]
    return days, [float(found.get(d, 0)) for d in days]


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=COUNTY_TZ)


async def forecast(conn: AsyncConnection, category: str, until: datetime, history_weeks: int = 104,
                   store: bool = False) -> dict:
    cur = await conn.execute("SELECT 1 FROM event_categories WHERE code = %s", (category,))
    if await cur.fetchone() is None:
        raise InvalidInput(f"category {category!r} is not in the event categories")
    days, counts = await weekly_counts(conn, category, until, history_weeks)
    first = next((i for i, c in enumerate(counts) if c), None)
    if first is None:
        raise TooShort(f"no events of category {category!r} in the last {history_weeks} weeks")
    days, counts = days[first:], counts[first:]  # weeks before the first report are not zeros
    result = fit(counts)
    ahead = [days[-1] + timedelta(weeks=i + 1) for i in range(len(result.mean))]
    if store:
        await _store(conn, category, ahead, result, until)
    return {"category": category, "model": result.model, "level": result.level,
            "history": [{"week": d, "count": c} for d, c in zip(days, counts, strict=True)],
            "forecast": [{"week": d, "mean": m, "lower": lo, "upper": hi} for d, m, lo, hi
                         in zip(ahead, result.mean, result.lower, result.upper, strict=True)]}


async def _store(conn: AsyncConnection, category: str, weeks: list[date], result: Forecast,
                 made_at: datetime) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO event_forecasts (category_code, week_start, made_at, model, mean,"
            " lower, upper, level) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(category, w, made_at, result.model, m, lo, hi, result.level)
             for w, m, lo, hi in zip(weeks, result.mean, result.lower, result.upper,
                                     strict=True)])


async def accuracy(conn: AsyncConnection, category: str, until: datetime) -> dict:
    """The stored forecasts of complete weeks against what came, beside the naive forecast."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (week_start) week_start, mean, lower, upper FROM event_forecasts"
        " WHERE category_code = %s AND week_start < %s ORDER BY week_start, made_at DESC",
        (category, week_start(until)))
    stored = await cur.fetchall()
    if not stored:
        return {"category": category, "weeks": 0, "mae": None, "naive_mae": None,
                "coverage": None}
    weeks = (week_start(until) - stored[0][0]).days // 7 + 1
    days, counts = await weekly_counts(conn, category, until, weeks)
    actual = dict(zip(days, counts, strict=True))
    errors, naive, covered = [], [], 0
    for week, mean, lower, upper in stored:
        came, before = actual.get(week), actual.get(week - timedelta(weeks=1))
        if came is None:
            continue
        errors.append(abs(came - mean))
        covered += lower <= came <= upper
        if before is not None:
            naive.append(abs(came - before))
    n = len(errors)
    return {"category": category, "weeks": n, "mae": round(sum(errors) / n, 3) if n else None,
            "naive_mae": round(sum(naive) / len(naive), 3) if naive else None,
            "coverage": round(covered / n, 3) if n else None}
