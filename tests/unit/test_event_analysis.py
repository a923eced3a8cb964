"""Event analysis, the pure parts: hot-spot significance controls false alarms over many
random seeds and still finds a real cluster; a forecast of a seasonal series beats the naive
one; a series too short to forecast says so."""

import math
import random

import pytest

from cityevents.analysis.forecast import TooShort, fit
from cityevents.analysis.hotspots import PairCount, significant
from cityevents.analysis.recurring import _trend


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth: fine for the small rates used here
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _scatter(seed: int, cells: int = 60, periods: int = 8, hot: int | None = None):
    rng = random.Random(seed)
    pairs = []
    for i in range(cells):
        lam = rng.choice((0.5, 1.0, 2.0))  # places differ; each is compared with itself
        if i == hot:
            lam = 2.0  # a busy place whose rate went up fivefold
        history = sum(_poisson(rng, lam) for _ in range(periods))
        current = _poisson(rng, lam * (5 if i == hot else 1))
        pairs.append(PairCount(f"g{i}", "E01", current, history))
    return pairs


def test_random_scatter_rarely_raises_a_hotspot_and_a_real_one_is_found() -> None:
    seeds = range(300)
    false_runs = sum(bool(significant(_scatter(s), periods=8)) for s in seeds)
    # Benjamini-Hochberg at 0.05: under no real change at most ~5 % of runs flag anything
    assert false_runs / len(seeds) <= 0.06, f"{false_runs} of {len(seeds)} runs flagged noise"
    found = 0
    for s in seeds:
        flagged = {h.area for h in significant(_scatter(s, hot=7), periods=8)}
        found += "g7" in flagged
    assert found / len(seeds) >= 0.7, f"the 5x cell was found in only {found} runs"


def test_a_single_event_is_never_a_hotspot() -> None:
    pairs = [PairCount("new", "E01", 1, 0)] + [PairCount(f"g{i}", "E01", 0, 8)
                                               for i in range(20)]
    assert significant(pairs, periods=8) == []


def _seasonal(weeks: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, round(30 + 12 * math.sin(2 * math.pi * w / 13) + rng.gauss(0, 2)))
            for w in range(weeks)]


def test_a_seasonal_series_is_forecast_better_than_last_week() -> None:
    model_err, naive_err = 0.0, 0.0
    for seed in range(3):
        series = _seasonal(60, seed)
        for origin in (44, 48, 52):
            result = fit(series[:origin])
            came = series[origin:origin + 4]
            model_err += sum(abs(a - m) for a, m in zip(came, result.mean, strict=True))
            naive_err += sum(abs(a - series[origin - 1]) for a in came)
            assert all(lo <= m <= hi for lo, m, hi in
                       zip(result.lower, result.mean, result.upper, strict=True))
    assert model_err < 0.7 * naive_err, (model_err, naive_err)


def test_too_short_a_series_says_so() -> None:
    with pytest.raises(TooShort, match="at least 8"):
        fit([3, 4, 5])


def test_recurring_trend_per_week() -> None:
    assert _trend([0, 3, 3, 3], 4) == ([1, 0, 0, 3], "rising")
    assert _trend([0, 0, 0, 3], 4) == ([3, 0, 0, 1], "falling")
    assert _trend([0, 1, 2, 3], 4)[1] == "steady"
