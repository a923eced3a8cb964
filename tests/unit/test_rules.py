"""Rule conditions as pure functions (ingestion/rules/evaluate.py) and rule validation."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cityops.errors import ConfigError
from ingestion.retention import DEFAULT_DAYS, retention_plan
from ingestion.rollups import _ranges, minutes_of
from ingestion.rules import evaluate as ev
from ingestion.rules.model import EXAMPLES_DIR, load_rule_file, parse_rule

BASE = {"severity": "major", "target": {"point": "p"}}


def rule(**fields):
    return parse_rule(BASE | fields)


def series(values, step_ms=1000, start=1_000_000):
    return [(start + i * step_ms, float(v)) for i, v in enumerate(values)]


def flips(transitions):
    return [(t.active, t.at_ms) for t in transitions]


# -- threshold ---------------------------------------------------------------------------------
def test_threshold_raises_only_after_the_minimum_duration_and_clears_with_hysteresis():
    r = rule(id="t", kind="threshold", above=100, clear=90, for_s=3)
    values = [50, 120, 130, 125, 110, 95, 92, 85, 80]
    readings = series(values)
    steps = ev.replay(r, readings, 0, active=False)
    # beyond from index 1 (t=1001 s); held 3 s at index 4; 95 and 92 are inside the band
    # (above the clear level 90) so the alarm stays; 85 clears it
    assert flips(steps) == [(True, readings[4][0]), (False, readings[7][0])]


def test_threshold_spike_shorter_than_the_duration_raises_nothing():
    r = rule(id="t", kind="threshold", above=100, for_s=5)
    assert ev.replay(r, series([50, 150, 150, 50, 150, 50]), 0, active=False) == []


def test_threshold_duration_counts_from_a_run_that_began_before_the_new_readings():
    r = rule(id="t", kind="threshold", above=100, for_s=3)
    readings = series([150, 150, 150, 150, 150])
    # only the last reading is new; the run began 4 s before it
    assert flips(ev.replay(r, readings, 4, active=False)) == [(True, readings[4][0])]


def test_below_threshold_and_no_change_when_already_active():
    r = rule(id="t", kind="threshold", below=10, clear=15)
    readings = series([20, 5, 12, 14, 16, 3])
    assert [t.active for t in ev.replay(r, readings, 0, active=False)] == [True, False, True]
    assert ev.replay(r, series([5, 6, 12]), 0, active=True) == []


# -- rate of change ----------------------------------------------------------------------------
def test_rate_of_change_raises_on_a_steep_climb_and_clears_when_it_flattens():
    r = rule(id="r", kind="rate_of_change", max_per_s=2, window_s=5)
    values = [10, 10, 11, 11, 12, 30, 50, 50, 50, 50, 50, 50, 50, 50]
    steps = ev.replay(r, series(values), 0, active=False)
    assert [t.active for t in steps] == [True, False]
    assert steps[0].value == 30 and "changing +" in steps[0].message


def test_rate_needs_two_readings_in_the_window():
    r = rule(id="r", kind="rate_of_change", max_per_s=1, window_s=1)
    assert ev.replay(r, series([0, 100], step_ms=5000), 0, active=False) == []


# -- anomaly -----------------------------------------------------------------------------------
def noisy(n, mean=20.0, sd=0.5, seed=7):
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


@pytest.mark.parametrize("method", ["mad", "ewma"])
def test_anomaly_raises_on_an_outlier_and_clears_after(method):
    r = rule(id="a", kind="anomaly", method=method, window_s=600, z=5, min_points=30)
    values = [*noisy(100), 45.0, *noisy(5, seed=8)]
    steps = ev.replay(r, series(values), 50, active=False)
    assert [t.active for t in steps] == [True, False]
    assert steps[0].value == 45.0


@pytest.mark.parametrize("method", ["mad", "ewma"])
def test_anomaly_is_quiet_on_noise_and_waits_for_enough_history(method):
    r = rule(id="a", kind="anomaly", method=method, window_s=600, z=5, min_points=30)
    assert ev.replay(r, series(noisy(300)), 0, active=False) == []
    assert ev.replay(r, series([*noisy(10), 1000.0]), 0, active=False) == []


def test_robust_z_survives_a_constant_history():
    assert ev.robust_z(np.array([3.0] * 10), 3.0) == 0
    assert ev.robust_z(np.array([3.0] * 10), 4.0) == math.inf
    assert ev.robust_z(np.array([3.0] * 9 + [5.0]), 5.0) > 5  # MAD 0: mean deviation used


def daily(days, bucket_s=600, noise=0.3, seed=3):
    """Bucket means of a load with a daily cycle: 50 +- 30 (peak 80 at 14:00, 20 at 02:00)."""
    rng = random.Random(seed)
    start = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    out = []
    for i in range(int(days * 86400 / bucket_s)):
        t = start + i * bucket_s * 1000
        hour = (t / 3_600_000) % 24
        out.append((t, 50 + 30 * math.cos((hour - 14) / 24 * 2 * math.pi) + rng.gauss(0, noise)))
    return out


def test_stl_flags_a_value_normal_overall_but_wrong_for_the_time_of_day():
    history = daily(4)
    model = ev.fit_seasonal(history, 600, 86400)
    assert model is not None
    r = rule(id="s", kind="anomaly", method="stl", window_s=4 * 86400, z=6)
    night = history[-1][0] + 86400_000 - (history[-1][0] % 86400_000) + 2 * 3_600_000  # 02:00
    peak = night + 12 * 3_600_000                                                      # 14:00
    assert abs(model.expected(peak) - 80) < 2 and abs(model.expected(night) - 20) < 2
    assert 0.1 < model.scale < 1.0  # about the noise (0.3), not the in-sample residual
    # 78 is within the day's range but an anomaly at 02:00, which MAD over the days misses
    assert ev.replay(r, [(peak, 80.5)], 0, active=False, model=model) == []
    assert [t.active for t in ev.replay(r, [(night, 78.0)], 0, False, model)] == [True]
    mad = rule(id="m", kind="anomaly", method="mad", window_s=86400 * 4, z=6)
    assert ev.replay(mad, [*history, (night, 78.0)], len(history), active=False) == []


def test_stl_needs_two_periods():
    assert ev.fit_seasonal(daily(1.5), 600, 86400) is None
    assert ev.fit_seasonal([], 600, 86400) is None


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "message"), [
    ({"kind": "threshold", "above": 1, "below": 0}, "exactly one of"),
    ({"kind": "threshold", "above": 10, "clear": 11}, "hysteresis"),
    ({"kind": "threshold", "above": 10, "for_s": -1}, "for_s"),
    ({"kind": "rate_of_change", "max_per_s": 1, "clear_per_s": 2}, "clear_per_s"),
    ({"kind": "anomaly", "method": "stl", "window_s": 86400}, "two periods"),
    ({"kind": "anomaly", "method": "stl", "window_s": 864000, "bucket_s": 7000}, "multiple"),
    ({"kind": "offline", "after_s": 0}, "after_s"),
    ({"kind": "threshold", "above": 1, "colour": "red"}, "colour"),
    ({"kind": "wobble"}, "kind"),
])
def test_invalid_rules_name_the_problem(fields, message):
    with pytest.raises(ConfigError, match=message):
        parse_rule({"id": "x", **BASE, **fields})


def test_point_is_required_except_for_offline():
    with pytest.raises(ConfigError, match=r"target.point is required"):
        parse_rule({"id": "x", "severity": "minor", "target": {}, "kind": "threshold",
                    "above": 1})
    assert parse_rule({"id": "x", "severity": "minor", "target": {}, "kind": "offline",
                       "after_s": 5}).kind == "offline"


def test_every_example_rule_file_loads():
    files = sorted(EXAMPLES_DIR.glob("*.yaml"))
    assert len(files) >= 2
    kinds = {r.kind for path in files for r in load_rule_file(path)}
    assert kinds == {"threshold", "rate_of_change", "offline", "anomaly"}


def test_duplicate_ids_in_a_file_are_refused(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n" + "  - {id: a, kind: offline, severity: minor, target: {},"
                    " after_s: 5}\n" * 2)
    with pytest.raises(ConfigError, match="unique"):
        load_rule_file(path)


# -- rollup and retention helpers ---------------------------------------------------------------
def test_dirty_minutes_merge_into_ranges():
    minutes = minutes_of({0, 59_999, 60_000, 180_000, 185_000})
    assert [m.timestamp() for m in minutes] == [0, 60, 180]
    start = datetime(1970, 1, 1, tzinfo=UTC)
    assert _ranges(minutes, timedelta(minutes=1)) == [
        (start, start + timedelta(minutes=2)),
        (start + timedelta(minutes=3), start + timedelta(minutes=4)),
    ]


def test_retention_plan_merges_and_refuses_unknown_tables():
    assert retention_plan({"readings": 7}) == DEFAULT_DAYS | {"readings": 7}
    with pytest.raises(ConfigError, match="readingz"):
        retention_plan({"readingz": 7})
    with pytest.raises(ConfigError, match="negative"):
        retention_plan({"readings": -1})


def test_registry_matches_targets_and_watches_only_what_rules_need():
    from ingestion.rules.engine import PointInfo, build_registry

    points = [PointInfo(*p) for p in [
        (1, "volts", "m1", "meter", "gw1"), (2, "amps", "m1", "meter", "gw1"),
        (3, "volts", "m2", "meter", "gw2"), (4, "volts", "u1", "ups", "gw1"),
        (5, "temp", "w1", "wall", "gw1")]]
    rules = [(rule(id="hi", kind="threshold", above=250,
                   target={"point": "volts", "profile": "meter"}), 0),
             (rule(id="gw", kind="threshold", above=1, target={"point": "volts", "gateway": "gw2"}),
              0),
             (parse_rule({"id": "off", "kind": "offline", "severity": "minor", "after_s": 5,
                          "target": {"devices": ["w1"]}}), 0)]
    reg = build_registry(rules, points, {})
    assert {pid: [r.id for r in rs] for pid, rs in reg.by_point.items()} == {
        1: ["hi"], 3: ["hi", "gw"]}
    assert reg.offline_devices == {"off": ["w1"]}
    assert reg.watched == {1, 3, 5}
