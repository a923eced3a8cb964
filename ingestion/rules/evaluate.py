"""The conditions of rules as pure functions of readings: no database, no clock.

`replay` walks the readings that are new for a (rule, device) in time order, starting from the
condition state stored for it, and returns the transitions (raise or clear) it finds. The
engine (engine.py) fetches the readings and stores the outcome; keeping this part pure lets the
unit tests cover every rule kind exhaustively.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from ingestion.rules.model import AnomalyRule, RateRule, Rule, ThresholdRule

Sample = tuple[int, float]
"""(time in ms since the epoch, value)"""

MAD_TO_SIGMA = 1.4826
MEAN_AD_TO_SIGMA = 1.2533


@dataclass(frozen=True)
class Transition:
    active: bool
    at_ms: int
    value: float
    message: str


@dataclass(frozen=True)
class SeasonalModel:
    """What STL predicts for a time: flat trend plus the last period's season."""

    start_ms: int
    bucket_ms: int
    trend: float
    season: tuple[float, ...]
    scale: float

    def expected(self, t_ms: int) -> float:
        phase = ((t_ms - self.start_ms) // self.bucket_ms) % len(self.season)
        return self.trend + self.season[phase]


def replay(
    rule: Rule, readings: list[Sample], first_new: int, active: bool,
    model: SeasonalModel | None = None,
) -> list[Transition]:
    """Transitions over readings[first_new:], each judged with the readings before it."""
    out: list[Transition] = []
    runs = _beyond_runs(rule, readings) if isinstance(rule, ThresholdRule) else None
    for i in range(first_new, len(readings)):
        verdict = _condition(rule, readings, i, active, runs, model)
        if verdict is None or verdict[0] == active:
            continue
        active = verdict[0]
        out.append(Transition(active, readings[i][0], readings[i][1], verdict[1]))
    return out


def _condition(
    rule: Rule, readings: list[Sample], i: int, active: bool,
    runs: list[int] | None, model: SeasonalModel | None,
) -> tuple[bool, str] | None:
    """(condition holds, why) at reading i, or None when it cannot be judged (too little data)."""
    if isinstance(rule, ThresholdRule):
        assert runs is not None
        return threshold_condition(rule, readings, i, active, runs)
    if isinstance(rule, RateRule):
        return rate_condition(rule, readings, i, active)
    if isinstance(rule, AnomalyRule):
        return anomaly_condition(rule, readings, i, active, model)
    return None


# -- threshold -------------------------------------------------------------------------------
def _beyond(rule: ThresholdRule, value: float) -> bool:
    return value > rule.above if rule.above is not None else value < rule.below  # type: ignore


def _cleared(rule: ThresholdRule, value: float) -> bool:
    if rule.above is not None:
        return value <= (rule.clear if rule.clear is not None else rule.above)
    return value >= (rule.clear if rule.clear is not None else rule.below)  # type: ignore


def _beyond_runs(rule: ThresholdRule, readings: list[Sample]) -> list[int]:
    """For each reading, the time the current run of beyond-limit readings began (-1: none)."""
    runs, start = [], -1
    for t, v in readings:
        if not _beyond(rule, v):
            start = -1
        elif start < 0:
            start = t
        runs.append(start)
    return runs


def threshold_condition(
    rule: ThresholdRule, readings: list[Sample], i: int, active: bool, runs: list[int]
) -> tuple[bool, str]:
    t, v = readings[i]
    limit = rule.above if rule.above is not None else rule.below
    side = "above" if rule.above is not None else "below"
    if active:
        back = _cleared(rule, v)
        return (not back, f"value {v:g} back from {side} {limit:g}" if back else "")
    held_since = runs[i]
    holds = held_since >= 0 and t - held_since >= rule.for_s * 1000
    return (holds, f"value {v:g} {side} {limit:g} for {(t - held_since) / 1000:g} s"
            if holds else "")


# -- rate of change --------------------------------------------------------------------------
def rate_condition(
    rule: RateRule, readings: list[Sample], i: int, active: bool
) -> tuple[bool, str] | None:
    t, v = readings[i]
    j = bisect_left(readings, (t - int(rule.window_s * 1000), -math.inf), 0, i)
    if j >= i or readings[j][0] >= t:
        return None
    t0, v0 = readings[j]
    rate = (v - v0) / ((t - t0) / 1000)
    limit = rule.max_per_s if not active else (
        rule.clear_per_s if rule.clear_per_s is not None else rule.max_per_s)
    holds = abs(rate) > limit
    return holds, f"changing {rate:+.4g}/s (limit {rule.max_per_s:g}/s)"


# -- anomaly ---------------------------------------------------------------------------------
def robust_z(history: np.ndarray, value: float) -> float:
    """(value - median) in robust standard deviations (MAD, or mean deviation if MAD is 0)."""
    median = float(np.median(history))
    deviations = np.abs(history - median)
    scale = MAD_TO_SIGMA * float(np.median(deviations))
    if scale == 0:
        scale = MEAN_AD_TO_SIGMA * float(np.mean(deviations))
    return _ratio(value - median, scale)


def ewma_z(history: np.ndarray, value: float, alpha: float) -> float:
    """Distance from the exponentially weighted mean, in its weighted standard deviations."""
    mean, var = float(history[0]), 0.0
    for x in history[1:]:
        diff = float(x) - mean
        incr = alpha * diff
        mean += incr
        var = (1 - alpha) * (var + diff * incr)
    return _ratio(value - mean, math.sqrt(var))


def _ratio(distance: float, scale: float) -> float:
    if scale > 0:
        return distance / scale
    return 0.0 if distance == 0 else math.copysign(math.inf, distance)


def anomaly_condition(
    rule: AnomalyRule, readings: list[Sample], i: int, active: bool,
    model: SeasonalModel | None,
) -> tuple[bool, str] | None:
    t, v = readings[i]
    if rule.method == "stl":
        if model is None:
            return None
        z = _ratio(v - model.expected(t), model.scale)
    else:
        j = bisect_left(readings, (t - int(rule.window_s * 1000), -math.inf), 0, i)
        if i - j < rule.min_points:
            return None
        history = np.fromiter((r[1] for r in readings[j:i]), dtype=float, count=i - j)
        z = robust_z(history, v) if rule.method == "mad" else ewma_z(history, v, rule.alpha)
    limit = rule.clear_level if active else rule.z
    holds = bool(abs(z) >= limit if not active else abs(z) > limit)
    return holds, f"value {v:g} is {z:+.3g} robust deviations from its {rule.method} expectation"


def fit_seasonal(
    buckets: list[Sample], bucket_s: float, period_s: float
) -> SeasonalModel | None:
    """STL on regular bucket means (gaps interpolated); None with less than two periods."""
    from statsmodels.tsa.seasonal import STL  # heavy import: only where STL is used

    if not buckets:
        return None
    step = int(bucket_s * 1000)
    period = int(period_s // bucket_s)
    start = buckets[0][0]
    n = (buckets[-1][0] - start) // step + 1
    if n < 2 * period or len(buckets) < period:
        return None
    grid = start + step * np.arange(n)
    times = np.array([b[0] for b in buckets], dtype=float)
    values = np.interp(grid, times, np.array([b[1] for b in buckets], dtype=float))
    # a seasonal smoother spanning every cycle: the season is one shape, not refitted per day,
    # so a day's noise stays in the residuals instead of being explained away
    cycles = n // period
    fit = STL(values, period=period, seasonal=max(7, cycles | 1), robust=True).fit()
    season = np.asarray(fit.seasonal)[-period:]
    # the last `period` values start at phase (n - period) % period from `start`
    offset = (n - period) % period
    by_phase = np.array([season[(p - offset) % period] for p in range(period)])
    # the scale of what the model would have predicted wrongly: history minus trend minus the
    # season it will use from now on (in-sample STL residuals are too optimistic)
    errors = values - np.asarray(fit.trend) - by_phase[np.arange(n) % period]
    scale = MAD_TO_SIGMA * float(np.median(np.abs(errors - np.median(errors))))
    if scale == 0:
        scale = float(np.std(errors))
    # each phase's season is estimated from these very `cycles` values, which shrinks the
    # in-sample errors by about sqrt((cycles - 1) / cycles): undo that for new readings
    scale *= math.sqrt(cycles / max(1, cycles - 1))
    return SeasonalModel(start, step, float(np.asarray(fit.trend)[-1]), tuple(by_phase), scale)
